package dlt645sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// PTYPair is two connected pseudo-terminals made by socat: what is written to
// one is read from the other, like the two ends of a serial cable.
type PTYPair struct {
	A, B string // device paths (symlinks to /dev/pts/N)
	cmd  *exec.Cmd
	done chan struct{}
}

// NewPTYPair starts socat with two raw ptys linked into dir and waits until
// both exist. Stop it with Close.
func NewPTYPair(ctx context.Context, dir string) (*PTYPair, error) {
	path, err := exec.LookPath("socat")
	if err != nil {
		return nil, fmt.Errorf("socat is needed for a pty pair (apt-get install socat): %w", err)
	}
	p := &PTYPair{A: filepath.Join(dir, "ttyA"), B: filepath.Join(dir, "ttyB"), done: make(chan struct{})}
	p.cmd = exec.Command(path, //nolint:gosec // G204: socat from PATH, with pty paths in the caller's directory

		"pty,raw,echo=0,link="+p.A,
		"pty,raw,echo=0,link="+p.B)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		_, errA := os.Stat(p.A)
		_, errB := os.Stat(p.B)
		if errA == nil && errB == nil {
			return p, nil
		}
		select {
		case <-tick.C:
		case <-p.done:
			return nil, errors.New("socat exited before the ptys appeared")
		case <-deadline.C:
			_ = p.Close()
			return nil, errors.New("socat did not create the ptys within 10s")
		case <-ctx.Done():
			_ = p.Close()
			return nil, ctx.Err()
		}
	}
}

// Close stops socat and waits for it. Safe to call twice.
func (p *PTYPair) Close() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}
