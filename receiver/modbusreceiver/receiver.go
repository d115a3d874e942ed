package modbusreceiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/serialbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

// modbusReceiver polls every configured device; the metrics and traces pipelines share it.
type modbusReceiver struct {
	cfg *Config
	*device.Fleet

	id      string     // the receiver's component id, naming it to other users of a port
	specs   []connSpec // resolved once, at creation
	conns   []*conn
	pollers []*devicePoller

	dtus     *dtu.Listener // where the DTUs of dtu:// connections dial in; nil without such connections
	dtuLeave func()        // gives the DTU ids back to the process's listener of dtu.endpoint
	joined   bool          // dtus is the process's listener (else ours, unstarted)
}

// newReceiver resolves the configuration (reading profile files and TLS certificates) once: a file
// that is missing or bad fails the creation, and so `otelcol validate`.
func newReceiver(cfg *Config, set receiver.Settings) (*modbusReceiver, error) {
	specs, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	r := &modbusReceiver{cfg: cfg, id: set.ID.String(), specs: specs, Fleet: device.NewFleet(set, metadata.ScopeName, cfg.Settings, cfg.health())}
	if ids := dtuIDs(specs); len(ids) > 0 {
		// TLS files are read here, at creation, so that a bad one fails the configuration.
		r.dtus, err = dtu.New(context.Background(), cfg.DTU, ids, dtu.Settings{Logger: set.Logger, MeterProvider: set.MeterProvider, Scope: metadata.ScopeName})
		if err != nil {
			return nil, fmt.Errorf("dtu: %w", err)
		}
	}
	return r, nil
}

// Start builds the connections and device pollers and starts their schedules. It never touches the
// network: connections open on the first poll, and unreachable devices are retried on their schedule.
//
// Connections over a line (rtu, rtuovertcp, ascii, asciiovertcp) first join the process's owner of
// their port: a port another receiver uses with other line settings fails the start, naming both.
func (r *modbusReceiver) Start(ctx context.Context, host component.Host) error {
	for i := range r.specs {
		cs := &r.specs[i]
		if !lineScheme(cs.scheme) || cs.port != nil {
			continue
		}
		h, err := serialbus.Default.Join(cs.user(r.id), r.Clock())
		if err != nil {
			r.leave()
			return err
		}
		cs.port = h
		// Each backup endpoint's port has its own owner, shared with whoever else uses that port.
		for k := 1; k < len(cs.Addresses); k++ {
			h, err := serialbus.Default.Join(cs.backupUser(r.id, k), r.Clock())
			if err != nil {
				r.leave()
				return err
			}
			cs.backupPorts = append(cs.backupPorts, h)
		}
	}
	if r.dtus != nil {
		// One listener per endpoint in the process: a dlt645 receiver may listen on it too.
		l, leave, err := dtu.Default.Join("receiver "+r.id, r.dtus)
		if err != nil {
			r.leave()
			return err
		}
		r.dtus, r.dtuLeave, r.joined = l, leave, true
	}
	r.Fleet.Start(ctx, host, func() { r.add(r.specs) })
	return nil
}

// leave gives the ports joined at Start back to their owner.
func (r *modbusReceiver) leave() {
	for i := range r.specs {
		cs := &r.specs[i]
		if cs.port != nil {
			cs.port.Leave()
			cs.port = nil
		}
		for _, h := range cs.backupPorts {
			h.Leave()
		}
		cs.backupPorts = nil
	}
	if r.dtuLeave != nil {
		r.dtuLeave()
		r.dtuLeave = nil
	}
}

// Shutdown stops the polls, then leaves the ports and the DTU listener (the last user closes each).
func (r *modbusReceiver) Shutdown(ctx context.Context) error {
	err := r.Fleet.Shutdown(ctx)
	r.leave()
	if r.dtus != nil && !r.joined {
		r.dtus.Close() // never started: unregisters its metrics
	}
	return err
}

// build builds the devices of conns without starting them (benchmarks).
func (r *modbusReceiver) build(conns []connSpec) { r.Build(func() { r.add(conns) }) }

func (r *modbusReceiver) add(conns []connSpec) {
	for ci := range conns {
		cs := &conns[ci]
		c := newConn(cs, r.dtus, r.Clock(), r.Logger())
		r.conns = append(r.conns, c)
		r.OnShutdown(c.leave)
		for di := range cs.devices {
			ds := &cs.devices[di]
			rec := r.Recorder(ds.identity)
			p := newDevicePoller(ds, c, rec, r.Clock())
			r.pollers = append(r.pollers, p)
			r.Add(rec, p, ds.poll, c.link)
		}
	}
}

// rebuildRunners returns runners of the built pollers with another emitter (benchmarks).
func (r *modbusReceiver) rebuildRunners(emit device.Emitter) []*device.Runner {
	out := make([]*device.Runner, len(r.pollers))
	for i, p := range r.pollers {
		out[i] = device.NewRunner(p.rec, p, r.cfg.Breaker, r.Clock(), r.Logger(), emit)
	}
	return out
}
