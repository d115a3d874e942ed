package dlt645receiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// dlt645Receiver polls every configured meter; the metrics and traces pipelines share it.
type dlt645Receiver struct {
	cfg   *Config
	specs []busSpec // resolved once, at creation
	*device.Fleet
}

func newReceiver(cfg *Config, set receiver.Settings) (*dlt645Receiver, error) {
	specs, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return &dlt645Receiver{cfg: cfg, specs: specs, Fleet: device.NewFleet(set, metadata.ScopeName, cfg.Settings, cfg.health())}, nil
}

// Start builds the buses and meter pollers and starts their schedules. It never touches a line:
// ports and connections open on the first poll, and unreachable meters are retried on their
// schedule.
func (r *dlt645Receiver) Start(ctx context.Context, host component.Host) error {
	r.Fleet.Start(ctx, host, func() { r.add(r.specs) })
	return nil
}

func (r *dlt645Receiver) add(specs []busSpec) {
	for bi := range specs {
		bs := &specs[bi]
		b := newBus(bs, r.Clock(), r.Logger())
		r.OnShutdown(b.close)
		for mi := range bs.meters {
			ms := &bs.meters[mi]
			rec := r.Recorder(ms.identity)
			m := newMeterPoller(ms, b, rec, r.Clock(), r.Logger())
			r.Add(rec, m, ms.poll, b.link)
		}
		if bs.timeSync > 0 {
			r.AddJob(b.syncJob(bs.timeSync))
		}
	}
}
