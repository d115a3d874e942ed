package dtu

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
)

// Registry gives one listener per listen endpoint to every receiver of the process that names it: a
// modbus and a dlt645 receiver on one dtu.endpoint share its port, each DTU id bound to one of them.
type Registry struct {
	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	l      *Listener
	owner  string            // the user whose settings the listener has
	owners map[string]string // DTU id → the user bound to it
	users  int
}

// Default is the process's registry.
var Default = NewRegistry()

// NewRegistry returns an empty registry (tests).
func NewRegistry() *Registry { return &Registry{entries: map[string]*entry{}} }

// Join binds the DTU ids of l (made by New, not started) to user on the listener of l's endpoint. The
// first user's l becomes that listener and is started; a later user's l is closed unused and its ids
// are added to the running one, which needs the same settings: other settings, or an id bound to
// another user, fail naming both users. Leave gives the ids back; the last user's Leave closes the
// listener. An endpoint on port 0 (any free port) is never shared.
func (r *Registry) Join(user string, l *Listener) (*Listener, func(), error) {
	key := l.cfg.Endpoint
	if _, port, err := net.SplitHostPort(key); err == nil && port == "0" {
		if err := l.Start(); err != nil {
			l.Close()
			return nil, nil, err
		}
		return l, l.Close, nil
	}
	ids := slices.Sorted(mapsKeys(l.known))
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[key]
	if !ok {
		if err := l.Start(); err != nil {
			l.Close()
			return nil, nil, err
		}
		e = &entry{l: l, owner: user, owners: map[string]string{}}
		for _, id := range ids {
			e.owners[id] = user
		}
		e.users = 1
		r.entries[key] = e
		return l, r.leave(key, e, ids), nil
	}
	defer l.Close() // its settings are the running listener's: only its ids are taken
	if !reflect.DeepEqual(e.l.cfg, l.cfg) {
		return nil, nil, fmt.Errorf("dtu: %s listens on %s with other settings than %s (registration, heartbeat, timeouts, max_connections and tls must be the same for one endpoint)", user, key, e.owner)
	}
	for _, id := range ids {
		if prev, ok := e.owners[id]; ok {
			return nil, nil, fmt.Errorf("dtu: DTU %q on %s is bound to %s and to %s; a DTU is one line, polled by one receiver", id, key, prev, user)
		}
	}
	for _, id := range ids {
		e.owners[id] = user
	}
	e.l.bind(ids)
	e.users++
	return e.l, r.leave(key, e, ids), nil
}

func (r *Registry) leave(key string, e *entry, ids []string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			e.users--
			last := e.users == 0
			for _, id := range ids {
				delete(e.owners, id)
			}
			if last {
				delete(r.entries, key)
			}
			r.mu.Unlock()
			if last {
				e.l.Close()
				return
			}
			e.l.unbind(ids)
		})
	}
}

// bind adds DTU ids to the known ones.
func (l *Listener) bind(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.known[id] = true
		delete(l.unknown, id)
	}
}

// unbind forgets DTU ids and ends their sessions: their user has gone.
func (l *Listener) unbind(ids []string) {
	l.mu.Lock()
	var ended []*session
	for _, id := range ids {
		delete(l.known, id)
		delete(l.registered, id)
		if s, ok := l.sessions[id]; ok {
			ended = append(ended, s)
		}
	}
	l.mu.Unlock()
	for _, s := range ended {
		_ = s.close(errUnbound) // the reason is known
	}
}
