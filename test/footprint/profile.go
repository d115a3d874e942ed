package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profiler takes the collector's CPU profile and allocation profile of the measurement window, and its
// in-use heap at the window's end, through the pprof extension (contrib pprofextension, in the edge
// manifest), for -profile.
type profiler struct {
	addr, dir, name string
	wg              sync.WaitGroup
	mu              sync.Mutex
	errs            []error
}

// overlay adds the pprof extension to a workload's overlay; the service's extension list of a later
// --config replaces the edge default's, so it is given whole.
func (p *profiler) overlay(base string) string {
	return fmt.Sprintf("extensions:\n  pprof:\n    endpoint: %s\n", p.addr) +
		strings.Replace(base, "service:\n", "service:\n  extensions: [health_check, file_storage, pprof]\n", 1)
}

// start fetches the CPU and allocation profiles over the window (delta profiles: ?seconds= on allocs
// gives what was allocated in those seconds only) and, when the window ends, the in-use heap (as of
// the last collection, what steady memory holds) and its text form, whose end lists runtime.MemStats
// (heap in use and goal, stacks, GC cycles).
func (p *profiler) start(window time.Duration) {
	secs := int(window.Seconds())
	for kind, path := range map[string]string{"cpu": "profile", "allocs": "allocs"} {
		p.get(kind, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.addr, path, secs), kind+".pprof", 0, window+30*time.Second)
	}
	p.get("heap", fmt.Sprintf("http://%s/debug/pprof/heap", p.addr), "heap.pprof", window, 30*time.Second)
	p.get("heap text", fmt.Sprintf("http://%s/debug/pprof/heap?debug=1", p.addr), "heap.txt", window, 30*time.Second)
}

// get fetches url into <dir>/<name>.<file> after delay, in the background.
func (p *profiler) get(kind, url, file string, delay, timeout time.Duration) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-time.After(delay)
		if err := p.fetch(url, filepath.Join(p.dir, p.name+"."+file), timeout); err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, fmt.Errorf("pprof %s: %w", kind, err))
			p.mu.Unlock()
		}
	}()
}

func (p *profiler) fetch(url, dst string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url) //nolint:noctx // bounded by the client's timeout
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(dst) //nolint:gosec // the directory given with -profile
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// wait waits for the profiles.
func (p *profiler) wait() error {
	p.wg.Wait()
	return errors.Join(p.errs...)
}
