package transport

import (
	"fmt"
	"time"
)

// Failover picks which of a connection's endpoints (the first and its backups, in order) is in use:
// after `after` failed connects in a row the next one is, and once a backup has served for `back`,
// the first is tried again (once: if it still fails, the backup serves for another `back`). The
// caller serializes the calls (the connection's poll link).
type Failover struct {
	n      int
	after  int
	back   time.Duration
	active int
	fails  int
	since  time.Time
}

// NewFailover returns the failover state of n endpoints, the first in use.
func NewFailover(n, after int, back time.Duration) *Failover {
	return &Failover{n: n, after: max(after, 1), back: back}
}

// Active is the index of the endpoint in use.
func (f *Failover) Active() int { return f.active }

// FailbackDue tells whether a backup has served long enough at now for the first to be tried again.
func (f *Failover) FailbackDue(now time.Time) bool {
	return f.n > 1 && f.active != 0 && now.Sub(f.since) >= f.back
}

// TryFirst makes the first endpoint the one in use for a failback attempt and returns the backup
// that served, for Resume.
func (f *Failover) TryFirst() (backup int) {
	backup, f.active, f.fails = f.active, 0, 0
	return backup
}

// Resume goes back to backup after a failed failback attempt: it serves for another `back` from now.
func (f *Failover) Resume(backup int, now time.Time) {
	f.active, f.fails, f.since = backup, 0, now
}

// Failed records a failed connect to the endpoint in use; switched tells whether the next one is in
// use now.
func (f *Failover) Failed(now time.Time) (switched bool) {
	if f.n < 2 {
		return false
	}
	if f.fails++; f.fails < f.after {
		return false
	}
	f.active, f.fails, f.since = (f.active+1)%f.n, 0, now
	return true
}

// Connected records a connect to the endpoint in use.
func (f *Failover) Connected() { f.fails = 0 }

// Defaults of the backup endpoints' keys.
const (
	DefaultFailoverAfter = 3
	DefaultFailbackAfter = 10 * time.Minute
)

// FailoverKeys checks the keys shared by every connection that may list backup endpoints (the one
// `endpoint`, or `endpoints`, `failover_after` and `failback_after`) and returns the failover settings
// with their defaults. Each problem names its key under prefix.
func FailoverKeys(prefix, endpoint string, endpoints []string, after int, back time.Duration) (int, time.Duration, []error) {
	var errs []error
	set := after != 0 || back != 0
	if after < 0 {
		errs = append(errs, fmt.Errorf("%s.failover_after: must be at least 1 (failed connects before the next endpoint), got %d", prefix, after))
	}
	if back < 0 {
		errs = append(errs, fmt.Errorf("%s.failback_after: must be > 0, got %s", prefix, back))
	}
	if after == 0 {
		after = DefaultFailoverAfter
	}
	if back == 0 {
		back = DefaultFailbackAfter
	}
	if len(endpoints) == 0 {
		if set {
			errs = append(errs, fmt.Errorf("%s: failover_after and failback_after apply only with endpoints: (an endpoint and its backups)", prefix))
		}
		return after, back, errs
	}
	if endpoint != "" {
		errs = append(errs, fmt.Errorf("%s: give endpoint (one) or endpoints (an endpoint and its backups), not both", prefix))
	}
	return after, back, errs
}

// ParseEndpoints parses a connection's endpoint and its backups (`endpoints:`) with parse, the
// receiver's own endpoint parser. Each problem names its key under prefix: every endpoint uses the
// scheme of the first (one connection, one protocol), and none is listed twice.
func ParseEndpoints(prefix string, raws []string, parse func(raw string) (Endpoint, error)) ([]Endpoint, []error) {
	var errs []error
	eps := make([]Endpoint, 0, len(raws))
	seen := map[string]int{}
	for i, raw := range raws {
		ep, err := parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: %w", prefix, i, err))
			continue
		}
		if i > 0 && len(eps) > 0 && ep.Scheme != eps[0].Scheme {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: %s:// differs from endpoints[0]'s %s:// (one connection, one protocol)", prefix, i, ep.Scheme, eps[0].Scheme))
		}
		if j, ok := seen[ep.Address]; ok {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: %s is endpoints[%d] already", prefix, i, ep.Address, j))
		}
		seen[ep.Address] = i
		eps = append(eps, ep)
	}
	return eps, errs
}

// Backups are the endpoints of a connection or bus in order (`endpoints:`) and when to move between
// them.
type Backups struct {
	Addresses     []string // each endpoint's address (host:port, device path, DTU id); nil without `endpoints:`
	URLs          []string // the endpoints as configured
	FailoverAfter int
	FailbackAfter time.Duration
}

// ResolveBackups checks `endpoints:` and the failover keys of a connection or bus once, for every
// receiver: any scheme parse knows, the same for all (a second serial server, USB adapter or DTU
// reaches the same devices another way).
func ResolveBackups(prefix, endpoint string, endpoints []string, after int, back time.Duration, parse func(raw string) (Endpoint, error)) (Backups, []error) {
	var b Backups
	var errs []error
	b.FailoverAfter, b.FailbackAfter, errs = FailoverKeys(prefix, endpoint, endpoints, after, back)
	if len(endpoints) == 0 {
		return b, errs
	}
	eps, perrs := ParseEndpoints(prefix, endpoints, parse)
	for _, ep := range eps {
		b.Addresses = append(b.Addresses, ep.Address)
		b.URLs = append(b.URLs, ep.URL)
	}
	return b, append(errs, perrs...)
}
