package dlt645receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/serialbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// dlt645Receiver polls every configured meter; the metrics and traces pipelines share it.
type dlt645Receiver struct {
	cfg   *Config
	specs []busSpec     // resolved once, at creation
	dtus  *dtu.Listener // where the DTUs of dtu:// buses dial in; nil without such buses
	// dtuLeave gives the DTU ids back to the process's listener of dtu.endpoint (shared with any
	// modbus receiver on it); nil until Start joined it.
	dtuLeave func()
	id       string
	ports    []*serialbus.Handle   // per bus: its port's owner, joined at Start (nil for a DTU bus)
	backups  [][]*serialbus.Handle // per bus: the owners of its backup endpoints' ports
	// load-profile backfill: the receiver's id and build version, the storage clients opened at Start
	// and the pipeline that must accept the records before their checkpoint moves
	setID       component.ID
	version     string
	storage     map[component.ID]storage.Client
	storageErrs map[component.ID]error // storages that could not open their file
	profileSink profileSink
	// foundIDs: the device ids of the meters found by the buses' searches
	foundMu  sync.Mutex
	foundIDs map[string]bool
	*device.Fleet
}

func newReceiver(ctx context.Context, cfg *Config, set receiver.Settings) (*dlt645Receiver, error) {
	specs, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	r := &dlt645Receiver{cfg: cfg, id: set.ID.String(), setID: set.ID, version: set.BuildInfo.Version, specs: specs, Fleet: device.NewFleet(set, metadata.ScopeName, cfg.Settings, cfg.health())}
	if obs, oerr := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: set.ID.Type().String(), ReceiverCreateSettings: set}); oerr == nil {
		r.profileSink.obs = obs
	}
	if ids := dtuIDs(specs); len(ids) > 0 {
		// TLS files are read here, at creation, so that a bad one fails the configuration.
		r.dtus, err = dtu.New(ctx, cfg.DTU, ids, dtu.Settings{Logger: set.Logger, MeterProvider: set.MeterProvider, Scope: metadata.ScopeName})
		if err != nil {
			return nil, fmt.Errorf("dtu: %w", err)
		}
	}
	return r, nil
}

// Start opens the DTU port (if any buses are DTUs), builds the buses and meter pollers and starts
// their schedules. It never touches a line: ports and connections open on the first poll, and
// unreachable meters are retried on their schedule.
//
// Each serial or serial-server bus first joins the process's owner of its port (serialbus), shared with
// any other receiver on it; other line settings than another user's fail the start, naming both.
func (r *dlt645Receiver) Start(ctx context.Context, host component.Host) error {
	if err := r.storageClients(ctx, host); err != nil {
		return err
	}
	r.ports = make([]*serialbus.Handle, len(r.specs))
	for i := range r.specs {
		if r.specs[i].scheme == schemeDTU {
			continue // a DTU session is handed out by the listener, not a port
		}
		h, err := serialbus.Default.Join((&bus{spec: &r.specs[i]}).user(r.id, fmt.Sprintf("buses[%d]", i)), r.Clock())
		if err != nil {
			r.leave()
			_ = r.closeStorage(ctx) // the start failed already
			return err
		}
		r.ports[i] = h
		if err := r.joinBackups(i); err != nil {
			r.leave()
			_ = r.closeStorage(ctx) // the start failed already
			return err
		}
	}
	if r.dtus != nil {
		l, leave, err := dtu.Default.Join("receiver "+r.id, r.dtus)
		if err != nil {
			r.leave()
			_ = r.closeStorage(ctx) // the start failed already
			return err
		}
		r.dtus, r.dtuLeave = l, leave
	}
	r.Fleet.Start(ctx, host, func() { r.add(r.specs) })
	return nil
}

// joinBackups joins the ports of bus i's backup endpoints.
func (r *dlt645Receiver) joinBackups(i int) error {
	spec := &r.specs[i]
	if len(spec.Addresses) < 2 {
		return nil
	}
	if r.backups == nil {
		r.backups = make([][]*serialbus.Handle, len(r.specs))
	}
	for k, addr := range spec.Addresses[1:] {
		u := (&bus{spec: spec}).user(r.id, fmt.Sprintf("buses[%d].endpoints[%d]", i, k+1))
		u.Address, u.First = addr, spec.Addresses[0]
		h, err := serialbus.Default.Join(u, r.Clock())
		if err != nil {
			return err
		}
		r.backups[i] = append(r.backups[i], h)
	}
	return nil
}

func (r *dlt645Receiver) leave() {
	for _, hs := range r.backups {
		for _, h := range hs {
			h.Leave()
		}
	}
	r.backups = nil
	for i, h := range r.ports {
		if h != nil {
			h.Leave()
			r.ports[i] = nil
		}
	}
}

// Shutdown stops the polls, then leaves the ports (the last user closes a port) and closes the DTU port.
func (r *dlt645Receiver) Shutdown(ctx context.Context) error {
	err := r.Fleet.Shutdown(ctx)
	r.leave()
	err = errors.Join(err, r.closeStorage(ctx))
	switch {
	case r.dtuLeave != nil:
		r.dtuLeave()
	case r.dtus != nil:
		r.dtus.Close() // never started: unregisters its metrics
	}
	return err
}

func (r *dlt645Receiver) add(specs []busSpec) {
	for bi := range specs {
		bs := &specs[bi]
		b := newBus(bs, r.dtus, r.Clock(), r.Logger())
		if bi < len(r.ports) && r.ports[bi] != nil {
			b.share(r.ports[bi])
			if bi < len(r.backups) && len(r.backups[bi]) > 0 {
				b.backups(append([]*serialbus.Handle{r.ports[bi]}, r.backups[bi]...))
			}
		}
		r.OnShutdown(b.close)
		for mi := range bs.meters {
			ms := &bs.meters[mi]
			rec := r.Recorder(ms.identity)
			m := newMeterPoller(ms, b, rec, r.Clock(), r.Logger())
			r.addLoadProfile(m, ms)
			r.Add(rec, m, ms.poll, b.link)
		}
		if bs.discover != nil {
			r.addDiscovery(bs.discover, b)
		}
		if bs.timeSync > 0 {
			r.AddJob(b.syncJob(bs.timeSync))
		}
	}
}
