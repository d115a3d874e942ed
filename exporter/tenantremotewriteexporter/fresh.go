package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Fresh data first (delivery::mode: fresh_first).
//
// In order, a tenant's queue is sent oldest first: after an outage the dashboards see nothing
// new until the whole backlog is through. With fresh_first each tenant has two persistent
// queues. New data goes to the live queue, whose consumer tries each request once: delivered,
// or, when the backend does not take it (retryable error), handed to the backlog queue. So the
// live queue never waits on an outage, and when the backend is back the next live request
// reaches it at once. The backlog queue is retried like the in-order queue, oldest first, and
// paced to use at most backlog_share of the time (sending time of each backlog request, then
// a pause), leaving the rest of the link to live data. Samples then reach the backend out of
// order: only for backends that accept that (VictoriaMetrics; Mimir and Prometheus with an
// out-of-order window covering the outage).

// Delivery modes.
const (
	DeliveryInOrder    = "in_order"
	DeliveryFreshFirst = "fresh_first"
)

// backlogSuffix names the backlog queue of a pipeline (and its file and telemetry).
const backlogSuffix = ".backlog"

func backlogID(id component.ID) component.ID {
	return component.NewIDWithName(id.Type(), id.Name()+backlogSuffix)
}

// freshFirst is a tenant's pipeline with fresh_first: the live and the backlog exporterhelper
// over one remote-write client.
type freshFirst struct {
	live, backlog exporter.Metrics
	sender        exporter.Metrics
	pacer         *pacer
}

func (e *tenantExporter) newFreshFirst(ctx context.Context, set exporter.Settings, tenant string, sender exporter.Metrics) (exporter.Metrics, error) {
	p := &pacer{share: e.cfg.Delivery.BacklogShare, timeout: e.cfg.TimeoutSettings.Timeout, e: e, stop: make(chan struct{})}
	backlogSet := set
	backlogSet.ID = backlogID(set.ID)
	backlog, err := exporterhelper.NewMetrics(ctx, backlogSet, e.cfg, e.guarded(backlogSet.ID, tenant, set.Logger, p.pace(sender.ConsumeMetrics)),
		exporterhelper.WithQueue(e.cfg.QueueConfig),
		exporterhelper.WithRetry(e.cfg.BackOffConfig),
		// the pacer applies the timeout to the send alone, not to its pause
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
	if err != nil {
		return nil, err
	}
	var moved []metric.AddOption
	if e.tenant != nil {
		moved = append(moved, metric.WithAttributeSet(attribute.NewSet(attribute.String("tenant", tenant))))
	}
	livePush := func(ctx context.Context, md pmetric.Metrics) error {
		err := sender.ConsumeMetrics(ctx, md)
		if err == nil || consumererror.IsPermanent(err) {
			return err
		}
		// Not taken now: behind the backlog, on disk, before the live queue forgets it.
		n := md.DataPointCount() // before the backlog's queue owns md
		if berr := backlog.ConsumeMetrics(context.WithoutCancel(ctx), md); berr != nil {
			return consumererror.NewPermanent(errors.Join(err, berr))
		}
		e.telemetry.ExporterTenantremotewriteBacklogDataPoints.Add(ctx, int64(n), moved...)
		return nil
	}
	noRetry := configretry.NewDefaultBackOffConfig()
	noRetry.Enabled = false
	live, err := exporterhelper.NewMetrics(ctx, set, e.cfg, e.guarded(set.ID, tenant, set.Logger, livePush),
		exporterhelper.WithQueue(e.cfg.QueueConfig),
		exporterhelper.WithRetry(noRetry),
		exporterhelper.WithTimeout(e.cfg.TimeoutSettings),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
	if err != nil {
		return nil, err
	}
	return &freshFirst{live: live, backlog: backlog, sender: sender, pacer: p}, nil
}

func (f *freshFirst) Start(ctx context.Context, host component.Host) error {
	if err := f.sender.Start(ctx, host); err != nil {
		return err
	}
	if err := f.backlog.Start(ctx, host); err != nil {
		return errors.Join(err, f.sender.Shutdown(ctx))
	}
	if err := f.live.Start(ctx, host); err != nil {
		return errors.Join(err, f.backlog.Shutdown(ctx), f.sender.Shutdown(ctx))
	}
	return nil
}

// Shutdown stops the live queue first: a request it is handing over still finds the backlog.
func (f *freshFirst) Shutdown(ctx context.Context) error {
	err := f.live.Shutdown(ctx)
	f.pacer.close()
	return errors.Join(err, f.backlog.Shutdown(ctx), f.sender.Shutdown(ctx))
}

func (f *freshFirst) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return f.live.ConsumeMetrics(ctx, md)
}

func (f *freshFirst) Capabilities() consumer.Capabilities { return f.live.Capabilities() }

// errPaused is returned when shutdown interrupts the pause: the request stays queued.
var errPaused = errors.New("tenantremotewrite: backlog pause interrupted by shutdown")

// pacer keeps the backlog to its share of the time: after a send that took d, the next one
// waits d*(1-share)/share.
type pacer struct {
	share   float64
	timeout time.Duration
	e       *tenantExporter // its clock

	mu   sync.Mutex
	next time.Time

	stop chan struct{}
	once sync.Once
}

func (p *pacer) close() { p.once.Do(func() { close(p.stop) }) }

func (p *pacer) pace(send consumer.ConsumeMetricsFunc) consumer.ConsumeMetricsFunc {
	return func(ctx context.Context, md pmetric.Metrics) error {
		clk := p.e.clock
		p.mu.Lock()
		wait := p.next.Sub(clk.Now())
		p.mu.Unlock()
		if wait > 0 {
			ch, cancel := clk.After(wait)
			select {
			case <-ch:
			case <-p.stop:
				cancel()
				return errPaused
			case <-ctx.Done():
				cancel()
				return ctx.Err()
			}
			cancel()
		}
		sendCtx := ctx
		if p.timeout > 0 {
			var cancel context.CancelFunc
			sendCtx, cancel = context.WithTimeout(ctx, p.timeout)
			defer cancel()
		}
		start := clk.Now()
		err := send(sendCtx, md)
		if p.share < 1 {
			took := clk.Now().Sub(start)
			p.mu.Lock()
			p.next = clk.Now().Add(time.Duration(float64(took) * (1 - p.share) / p.share))
			p.mu.Unlock()
		}
		return err
	}
}
