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

// profiler takes the collector's CPU profile and allocation profile of the measurement window through
// the pprof extension (contrib pprofextension, in the edge manifest), for -profile.
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

// start fetches both profiles over the window (delta profiles: ?seconds= on allocs gives what was
// allocated in those seconds only).
func (p *profiler) start(window time.Duration) {
	secs := int(window.Seconds())
	for kind, path := range map[string]string{"cpu": "profile", "allocs": "allocs"} {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.fetch(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.addr, path, secs),
				filepath.Join(p.dir, p.name+"."+kind+".pprof"), window+30*time.Second); err != nil {
				p.mu.Lock()
				p.errs = append(p.errs, fmt.Errorf("pprof %s: %w", kind, err))
				p.mu.Unlock()
			}
		}()
	}
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

// wait waits for both profiles.
func (p *profiler) wait() error {
	p.wg.Wait()
	return errors.Join(p.errs...)
}
