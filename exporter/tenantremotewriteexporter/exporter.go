package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	prw "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/resourcetotelemetry"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

var (
	errNotStarted = errors.New("tenantremotewrite: exporter not started")
	errShutdown   = errors.New("tenantremotewrite: exporter is shut down")
)

var (
	attrActionDefault  = metric.WithAttributeSet(attribute.NewSet(attribute.String("action", "default")))
	attrActionDrop     = metric.WithAttributeSet(attribute.NewSet(attribute.String("action", "drop")))
	attrReasonMax      = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "max_tenants")))
	attrReasonShutdown = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "shutdown")))
)

// tenantExporter splits metrics by tenant and hands each tenant's share to that tenant's
// pipeline: an exporterhelper with the (persistent) sending queue and retries, whose push
// function is a remote-write sender configured for the tenant (endpoint, header): our rwSender, or
// the contrib exporter (with its own queue and retries disabled) where the config needs it.
type tenantExporter struct {
	set        exporter.Settings
	cfg        *Config
	tenant     *TenantConfig // nil: no split, one pipeline
	prwFactory exporter.Factory
	// contribReason is why the contrib exporter sends ("": our rwSender does).
	contribReason string
	telemetry     *metadata.TelemetryBuilder

	mu        sync.RWMutex
	host      component.Host    // host for the pipelines (storage wrapped); nil before Start
	storage   storage.Extension // of the persistent queues; nil without
	started   bool
	stopped   bool
	pipelines map[string]exporter.Metrics
	order     []string       // tenants in creation order (persisted in index)
	index     storage.Client // tenant index; nil without persistent queue or split
	limitHit  bool           // max_tenants reached was logged
	single    exporter.Metrics
	expiries  []*expiry // of the pipelines, flushed at shutdown

	clock clock.Clock // a variable so that tests can age samples by hand

	gaugesMu sync.Mutex
	gauges   map[component.ID]*atomic.Int64 // queue bytes by pipeline id (see diskBudget)
}

func newTenantExporter(ctx context.Context, set exporter.Settings, cfg *Config) (*tenantExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &tenantExporter{
		set:        set,
		cfg:        cfg,
		prwFactory: prw.NewFactory(),
		telemetry:  tb,
		pipelines:  map[string]exporter.Metrics{},
		clock:      clock.Real{},
		gauges:     map[component.ID]*atomic.Int64{},
	}
	if cfg.Tenant.HasValue() {
		e.tenant = cfg.Tenant.Get()
	}
	if q := cfg.QueueConfig.Get(); cfg.QueueConfig.HasValue() && q.StorageID != nil && q.NumConsumers > 1 {
		set.Logger.Warn("sending_queue::num_consumers > 1 sends a tenant's requests in parallel; backends that reject out-of-order samples (Prometheus) may refuse some after an outage",
			zap.Int("num_consumers", q.NumConsumers))
	}
	if cfg.budgetShadowed() {
		set.Logger.Warn("max_queue_bytes is not below sending_queue::queue_size: a full queue refuses the newest data before the budget drops the oldest; keep queue_size above the budget by what arrives during one retry interval",
			zap.Int64("max_queue_bytes", cfg.MaxQueueBytes), zap.Int64("queue_size", cfg.QueueConfig.Get().QueueSize))
	}
	if e.contribReason = contribOnly(&cfg.Config); e.contribReason == "" {
		set.Logger.Info("Remote-write 1.0 requests are sent by this exporter's own sender (target_info once per request, series in a stable order)")
	} else {
		set.Logger.Info("Remote-write requests are sent by the contrib prometheusremotewrite exporter: the configuration needs it", zap.String("reason", e.contribReason))
	}
	if e.tenant == nil {
		// Build the single pipeline now so that configuration problems surface at creation.
		e.single, err = e.newPipeline(ctx, "")
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// pipelineID names a tenant's pipeline: it keys the telemetry of its queue and the file of its
// persistent queue, e.g. tenantremotewrite/edge[acme].
func pipelineID(base component.ID, tenant string) component.ID {
	return component.NewIDWithName(base.Type(), base.Name()+"["+tenant+"]")
}

// newPipeline builds the sending pipeline of one tenant ("" = no split).
func (e *tenantExporter) newPipeline(ctx context.Context, tenant string) (exporter.Metrics, error) {
	id := e.set.ID
	inner := e.cfg.Config // copy; the maps and slices we change are replaced, not mutated
	inner.BackOffConfig.Enabled = false
	inner.RemoteWriteQueue.Enabled = false
	inner.TimeoutSettings.Timeout = 0
	inner.WAL = configoptional.None[prw.WALConfig]()
	logger := e.set.Logger
	if e.tenant != nil {
		id = pipelineID(e.set.ID, tenant)
		logger = logger.With(zap.String("tenant", tenant))
		inner.HTTP.Endpoint = strings.ReplaceAll(inner.HTTP.Endpoint, tenantPlaceholder, url.PathEscape(tenant))
		if e.tenant.Header != "" {
			headers := slices.Clone(inner.HTTP.Headers)
			headers.Set(e.tenant.Header, configopaque.String(tenant))
			inner.HTTP.Headers = headers
		}
	}

	innerSet := e.set
	innerSet.ID = component.NewIDWithName(e.prwFactory.Type(), id.String())
	innerSet.Logger = logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietCore{Core: c} }))
	// The inner exporter sees every attempt: its otelcol_exporter_send_failed_* would count each
	// retried 5xx although the request stays queued and is delivered later. Only the outer
	// (per-tenant) exporterhelper's counters tell what was sent and what was lost, so the inner
	// one publishes none.
	innerSet.MeterProvider = noopmetric.NewMeterProvider()
	var sender exporter.Metrics
	var err error
	promoted := false // the translator adds the promoted attributes itself
	if e.contribReason == "" {
		var s *rwSender
		if s, err = newRWSender(innerSet, &inner, e.promotedKeys()); err == nil {
			sender = resourcetotelemetry.WrapMetricsExporter(inner.ResourceToTelemetrySettings, s)
			promoted = s.promotes
		}
	} else {
		sender, err = e.prwFactory.CreateMetrics(ctx, innerSet, &inner)
	}
	if err != nil {
		return nil, fmt.Errorf("tenantremotewrite: remote-write client for tenant %q: %w", tenant, err)
	}
	if !promoted {
		sender = e.promoteResourceAttributes(sender)
	}
	sender = namePrometheusUnits(sender)

	outerSet := e.set
	outerSet.ID = id
	outerSet.Logger = logger
	if e.persistent() {
		outerSet.Logger = logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return keptCore{Core: c} }))
	}
	var p exporter.Metrics
	if e.cfg.Delivery.Mode == DeliveryFreshFirst {
		p, err = e.newFreshFirst(ctx, outerSet, tenant, sender)
	} else {
		p, err = exporterhelper.NewMetrics(ctx, outerSet, e.cfg, e.guarded(id, tenant, logger, sender.ConsumeMetrics),
			exporterhelper.WithQueue(e.cfg.QueueConfig),
			exporterhelper.WithRetry(e.cfg.BackOffConfig),
			exporterhelper.WithTimeout(e.cfg.TimeoutSettings),
			exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
			exporterhelper.WithStart(sender.Start),
			exporterhelper.WithShutdown(sender.Shutdown),
		)
	}
	if err != nil || !e.persistent() {
		return p, err
	}
	// A write to a disk queue is a storage transaction: calls arriving during one share the next.
	return newGroupCommit(p), nil
}

// guarded wraps the send of a queue (id) with the disk budget and max_sample_age: what the
// queue's consumer calls for every attempt.
func (e *tenantExporter) guarded(id component.ID, tenant string, logger *zap.Logger, send consumer.ConsumeMetricsFunc) consumer.ConsumeMetricsFunc {
	var x *expiry
	if e.cfg.MaxSampleAge > 0 {
		x = &expiry{
			maxAge: e.cfg.MaxSampleAge,
			now:    func() time.Time { return e.clock.Now() },
			logger: logger,
			count:  e.dropCounter("max_sample_age", tenant),
		}
		e.expiries = append(e.expiries, x)
	}
	var budget *diskBudget
	if e.cfg.MaxQueueBytes > 0 {
		budget = &diskBudget{
			limit:  e.cfg.MaxQueueBytes,
			queued: e.queueBytes(id),
			logger: logger,
			count:  e.dropCounter("disk_budget", tenant),
		}
	}
	if x == nil && budget == nil {
		return send
	}
	return func(ctx context.Context, md pmetric.Metrics) error {
		if budget != nil && budget.over(ctx, md) {
			return nil // the oldest request goes, unsent
		}
		if x != nil {
			if md.IsReadOnly() {
				// Not expected (Capabilities says we mutate, so the pipeline gives us our own copy).
				c := pmetric.NewMetrics()
				md.CopyTo(c)
				md = c
			}
			if x.drop(ctx, md) > 0 && md.ResourceMetrics().Len() == 0 {
				return nil // everything expired: done, nothing to send
			}
		}
		if err := send(ctx, md); err != nil {
			return err
		}
		if x != nil {
			x.delivered()
		}
		if budget != nil {
			budget.delivered()
		}
		return nil
	}
}

// dropCounter counts data points dropped on purpose, by reason and tenant.
func (e *tenantExporter) dropCounter(reason, tenant string) func(context.Context, int64) {
	attrs := []attribute.KeyValue{attribute.String("reason", reason)}
	if e.tenant != nil {
		attrs = append(attrs, attribute.String("tenant", tenant))
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	return func(ctx context.Context, n int64) {
		e.telemetry.ExporterTenantremotewriteDroppedDataPoints.Add(ctx, n, set)
	}
}

// persistent tells whether the sending queues are on disk.
func (e *tenantExporter) persistent() bool {
	return e.cfg.QueueConfig.HasValue() && e.cfg.QueueConfig.Get().StorageID != nil
}

// storageExtension returns the storage extension of the persistent queue, nil without one.
func (e *tenantExporter) storageExtension(host component.Host) (component.ID, storage.Extension, error) {
	if !e.persistent() {
		return component.ID{}, nil, nil
	}
	id := *e.cfg.QueueConfig.Get().StorageID
	ext, ok := host.GetExtensions()[id]
	if !ok {
		// `validate` cannot catch this: it builds the pipelines without the extensions, so the
		// start error has to say exactly what to change.
		var enabled []string
		for eid, c := range host.GetExtensions() {
			if _, ok := c.(storage.Extension); ok {
				enabled = append(enabled, eid.String())
			}
		}
		slices.Sort(enabled)
		have := "none"
		if len(enabled) > 0 {
			have = strings.Join(enabled, ", ")
		}
		return id, nil, fmt.Errorf("tenantremotewrite: sending_queue::storage: extension %q is not enabled: add it to service::extensions (and define it under extensions: if it is not; enabled storage extensions: %s)", id, have)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return id, nil, fmt.Errorf("tenantremotewrite: sending_queue::storage: extension %q is not a storage extension", id)
	}
	return id, se, nil
}

func (e *tenantExporter) Start(ctx context.Context, host component.Host) error {
	storageID, ext, err := e.storageExtension(host)
	if err != nil {
		return err
	}
	pipeHost := host
	if ext != nil {
		qs := newQueueStorage(ext, e)
		if qs.dir == "" {
			e.set.Logger.Warn("sending_queue::storage is not file_storage: queue files are not checked for corruption at start", zap.String("storage", storageID.String()))
		}
		ext = qs
		pipeHost = newQueueHost(host, storageID, qs)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errShutdown
	}
	e.host = pipeHost
	e.storage = ext
	e.started = true
	if e.single != nil {
		return e.single.Start(ctx, pipeHost)
	}
	if ext == nil {
		return nil
	}
	// Restore tenants whose persistent queue still holds data, so it is delivered even if no
	// new data arrives for them.
	e.index, err = ext.GetClient(ctx, component.KindExporter, e.set.ID, tenantIndexKey)
	if err != nil {
		return fmt.Errorf("tenantremotewrite: opening tenant index in %q: %w", storageID, err)
	}
	known, err := readTenantIndex(ctx, e.index)
	if err != nil {
		e.set.Logger.Warn("Tenant index unreadable; queues of earlier tenants are drained when their data arrives again", zap.Error(err))
	}
	for _, t := range known {
		pending, err := e.pending(ctx, ext, pipelineID(e.set.ID, t))
		if err != nil {
			e.set.Logger.Warn("Cannot inspect the queue of a known tenant", zap.String("tenant", t), zap.Error(err))
		}
		if pending == 0 && err == nil {
			continue
		}
		if len(e.pipelines) >= e.tenant.MaxTenants {
			e.set.Logger.Warn("More tenants with queued data than tenant::max_tenants; the rest waits until their data arrives again",
				zap.Int("max_tenants", e.tenant.MaxTenants))
			break
		}
		e.set.Logger.Info("Restoring queue of tenant", zap.String("tenant", t), zap.Uint64("queued_requests", pending))
		if _, err := e.createLocked(ctx, t); err != nil {
			return err
		}
	}
	// Persist the pruned list (tenants with an empty queue are forgotten).
	if err := writeTenantIndex(ctx, e.index, e.order); err != nil {
		e.set.Logger.Warn("Cannot write tenant index", zap.Error(err))
	}
	return nil
}

// pending reads how many requests a pipeline's persistent queues hold (with fresh_first, its
// live queue and its backlog).
func (e *tenantExporter) pending(ctx context.Context, ext storage.Extension, id component.ID) (uint64, error) {
	n, err := queuePending(ctx, ext, id)
	if e.cfg.Delivery.Mode == DeliveryFreshFirst {
		b, berr := queuePending(ctx, ext, backlogID(id))
		n, err = n+b, errors.Join(err, berr)
	}
	return n, err
}

// queuePending reads how many requests a tenant's persistent queue holds.
func queuePending(ctx context.Context, ext storage.Extension, id component.ID) (uint64, error) {
	c, err := ext.GetClient(ctx, component.KindExporter, id, pipeline.SignalMetrics.String())
	if err != nil {
		return 0, err
	}
	buf, err := c.Get(ctx, queueMetadataKey)
	err = errors.Join(err, c.Close(ctx))
	if err != nil || len(buf) == 0 {
		return 0, err
	}
	m, ok := parseQueueMeta(buf)
	if !ok {
		return 0, fmt.Errorf("unexpected queue metadata (%d bytes)", len(buf))
	}
	return m.pending(), nil
}

// createLocked builds and starts the pipeline of a new tenant; e.mu must be held.
func (e *tenantExporter) createLocked(ctx context.Context, tenant string) (exporter.Metrics, error) {
	p, err := e.newPipeline(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx, e.host); err != nil {
		_ = p.Shutdown(ctx)
		return nil, fmt.Errorf("tenantremotewrite: starting pipeline of tenant %q: %w", tenant, err)
	}
	e.pipelines[tenant] = p
	e.order = append(e.order, tenant)
	e.telemetry.ExporterTenantremotewriteTenants.Add(ctx, 1)
	e.set.Logger.Info("Tenant pipeline started", zap.String("tenant", tenant), zap.Int("tenants", len(e.pipelines)))
	return p, nil
}

// tenantOfID returns the tenant of a pipeline id (see pipelineID); false for the exporter's own.
func (e *tenantExporter) tenantOfID(id component.ID) (string, bool) {
	prefix := e.set.ID.Name() + "["
	name := strings.TrimSuffix(id.Name(), backlogSuffix)
	if e.tenant == nil || id.Type() != e.set.ID.Type() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, "]") {
		return "", false
	}
	return name[len(prefix) : len(name)-1], true
}

// errMaxTenants marks data refused because tenant::max_tenants was reached.
var errMaxTenants = errors.New("tenantremotewrite: tenant::max_tenants reached")

// pipelineFor returns the running pipeline of a tenant, creating it on first use.
func (e *tenantExporter) pipelineFor(ctx context.Context, tenant string) (exporter.Metrics, error) {
	e.mu.RLock()
	p, ok := e.pipelines[tenant]
	stopped, started := e.stopped, e.started
	e.mu.RUnlock()
	switch {
	case ok:
		return p, nil
	case stopped:
		return nil, errShutdown
	case !started:
		return nil, errNotStarted
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.pipelines[tenant]; ok {
		return p, nil
	}
	if e.stopped {
		return nil, errShutdown
	}
	if len(e.pipelines) >= e.tenant.MaxTenants {
		if !e.limitHit {
			e.limitHit = true
			e.set.Logger.Warn("tenant::max_tenants reached; data of further tenants is dropped (counted in otelcol_exporter_tenantremotewrite_refused_data_points)",
				zap.Int("max_tenants", e.tenant.MaxTenants), zap.String("first_refused_tenant", tenant))
		}
		return nil, errMaxTenants
	}
	p, err := e.createLocked(context.WithoutCancel(ctx), tenant)
	if err != nil {
		return nil, err
	}
	if e.index != nil {
		if err := writeTenantIndex(ctx, e.index, e.order); err != nil {
			e.set.Logger.Warn("Cannot write tenant index", zap.Error(err))
		}
	}
	return p, nil
}

func (e *tenantExporter) Capabilities() consumer.Capabilities {
	// Splitting moves resources into per-tenant batches; max_sample_age removes expired points
	// from the queued request itself, so that a retry does not count them again.
	// Promoted resource attributes are added to the points before they are sent.
	return consumer.Capabilities{MutatesData: e.tenant != nil || e.cfg.MaxSampleAge > 0 || e.promotes()}
}

func (e *tenantExporter) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if e.single != nil {
		e.mu.RLock()
		started, stopped := e.started, e.stopped
		e.mu.RUnlock()
		switch {
		case stopped:
			return errShutdown
		case !started:
			return errNotStarted
		}
		return e.single.ConsumeMetrics(ctx, md)
	}
	return e.consumeByTenant(ctx, md)
}

// tenantOf returns the tenant of a resource, or "" when it has no valid tenant attribute.
func (e *tenantExporter) tenantOf(rm pmetric.ResourceMetrics) string {
	v, ok := rm.Resource().Attributes().Get(e.tenant.Attribute)
	if !ok {
		return ""
	}
	t := v.AsString()
	if !validTenant(t) {
		return ""
	}
	return t
}

func (e *tenantExporter) consumeByTenant(ctx context.Context, md pmetric.Metrics) error {
	rms := md.ResourceMetrics()
	n := rms.Len()
	if n == 0 {
		return nil
	}
	// Resolve the tenant of every resource; "" left in tenants means drop.
	tenants := make([]string, n)
	var defaulted, dropped int
	for i := range n {
		t := e.tenantOf(rms.At(i))
		if t == "" {
			points := resourcePoints(rms.At(i))
			if e.tenant.DefaultTenant != "" {
				t = e.tenant.DefaultTenant
				defaulted += points
			} else {
				dropped += points
			}
		}
		tenants[i] = t
	}
	if defaulted > 0 {
		e.telemetry.ExporterTenantremotewriteUntenantedDataPoints.Add(ctx, int64(defaulted), attrActionDefault)
	}
	if dropped > 0 {
		e.telemetry.ExporterTenantremotewriteUntenantedDataPoints.Add(ctx, int64(dropped), attrActionDrop)
	}

	// Common case: one tenant, nothing dropped: pass the batch as it is.
	if tenants[0] != "" && !slices.ContainsFunc(tenants[1:], func(t string) bool { return t != tenants[0] }) {
		return e.send(ctx, tenants[0], md)
	}

	var groups []string
	parts := map[string]pmetric.Metrics{}
	for i := range n {
		t := tenants[i]
		if t == "" {
			continue
		}
		part, ok := parts[t]
		if !ok {
			part = pmetric.NewMetrics()
			parts[t] = part
			groups = append(groups, t)
		}
		rms.At(i).MoveTo(part.ResourceMetrics().AppendEmpty())
	}
	var errs []error
	for _, t := range groups {
		if err := e.send(ctx, t, parts[t]); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case len(errs) < len(groups):
		// Other tenants' shares were accepted: a retry upstream would send those twice.
		return consumererror.NewPermanent(errors.Join(errs...))
	default:
		return errors.Join(errs...)
	}
}

// send hands one tenant's share to its pipeline; refusals by policy are counted, not returned.
func (e *tenantExporter) send(ctx context.Context, tenant string, md pmetric.Metrics) error {
	p, err := e.pipelineFor(ctx, tenant)
	switch {
	case errors.Is(err, errMaxTenants):
		e.telemetry.ExporterTenantremotewriteRefusedDataPoints.Add(ctx, int64(md.DataPointCount()), attrReasonMax)
		return nil
	case errors.Is(err, errShutdown):
		e.telemetry.ExporterTenantremotewriteRefusedDataPoints.Add(ctx, int64(md.DataPointCount()), attrReasonShutdown)
		return err
	case err != nil:
		return err
	}
	if err := p.ConsumeMetrics(ctx, md); err != nil {
		return fmt.Errorf("tenant %q: %w", tenant, err)
	}
	return nil
}

func (e *tenantExporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	pipes := make([]exporter.Metrics, 0, len(e.pipelines)+1)
	tenants := make([]string, 0, len(e.pipelines)+1)
	for _, t := range e.order {
		pipes = append(pipes, e.pipelines[t])
		tenants = append(tenants, t)
	}
	if e.single != nil {
		pipes = append(pipes, e.single)
		tenants = append(tenants, "")
	}
	index, ext, expiries := e.index, e.storage, e.expiries
	e.mu.Unlock()

	errs := make([]error, len(pipes))
	var wg sync.WaitGroup
	for i, p := range pipes {
		wg.Go(func() { errs[i] = p.Shutdown(ctx) })
	}
	wg.Wait()
	for _, x := range expiries {
		x.flush()
	}
	if ext != nil {
		e.logKept(ctx, ext, tenants)
	}
	if n := len(pipes); e.single == nil && n > 0 {
		e.telemetry.ExporterTenantremotewriteTenants.Add(ctx, -int64(n))
	}
	if index != nil {
		errs = append(errs, index.Close(ctx))
	}
	e.telemetry.Shutdown()
	return errors.Join(errs...)
}

// logKept says, per pipeline, how many requests its persistent queue keeps for the next start,
// so that the exporterhelper's shutdown messages are not mistaken for loss.
func (e *tenantExporter) logKept(ctx context.Context, ext storage.Extension, tenants []string) {
	for _, t := range tenants {
		id := e.set.ID
		if e.tenant != nil {
			id = pipelineID(e.set.ID, t)
		}
		n, err := e.pending(ctx, ext, id)
		switch {
		case err != nil:
			e.set.Logger.Warn("Cannot read what the persistent queue keeps", zap.String("tenant", t), zap.Error(err))
		case n > 0:
			fields := []zap.Field{zap.Uint64("queued_requests", n)}
			if e.tenant != nil {
				fields = append(fields, zap.String("tenant", t))
			}
			e.set.Logger.Info("The persistent queue keeps unsent requests on disk; they are sent after the next start", fields...)
		}
	}
}

// resourcePoints counts the data points of one resource.
func resourcePoints(rm pmetric.ResourceMetrics) int {
	n := 0
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		ms := sms.At(i).Metrics()
		for j := range ms.Len() {
			m := ms.At(j)
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				n += m.Gauge().DataPoints().Len()
			case pmetric.MetricTypeSum:
				n += m.Sum().DataPoints().Len()
			case pmetric.MetricTypeHistogram:
				n += m.Histogram().DataPoints().Len()
			case pmetric.MetricTypeExponentialHistogram:
				n += m.ExponentialHistogram().DataPoints().Len()
			case pmetric.MetricTypeSummary:
				n += m.Summary().DataPoints().Len()
			}
		}
	}
	return n
}

// keptCore rewrites the exporterhelper's "Exporting failed. Dropping data." for a request that
// was interrupted by shutdown: with a persistent queue nothing is dropped, the queue keeps the
// request and sends it after the next start. Other failures (permanent errors) stay errors.
type keptCore struct {
	zapcore.Core
}

const (
	msgDropping    = "Exporting failed. Dropping data."
	msgKept        = "Sending interrupted by shutdown; the persistent queue keeps the request and sends it after the next start"
	shutdownPrefix = "interrupted due to shutdown: " // exporterhelper's shutdown error (internal/experr)
)

func (c keptCore) With(fields []zapcore.Field) zapcore.Core {
	return keptCore{Core: c.Core.With(fields)}
}

func (c keptCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(ent.Message, msgDropping) {
		// decided in Write, where the error is known
		return ce.AddCore(ent, c)
	}
	return c.Core.Check(ent, ce)
}

func (c keptCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if strings.HasPrefix(ent.Message, msgDropping) && interruptedByShutdown(fields) {
		ent.Level, ent.Message, ent.Stack = zapcore.InfoLevel, msgKept, ""
		out := make([]zapcore.Field, 0, len(fields))
		for _, f := range fields {
			if f.Key == "dropped_items" {
				f.Key = "kept_items"
			}
			out = append(out, f)
		}
		fields = out
	}
	if !c.Enabled(ent.Level) {
		return nil
	}
	return c.Core.Write(ent, fields)
}

func interruptedByShutdown(fields []zapcore.Field) bool {
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType && strings.HasPrefix(err.Error(), shutdownPrefix) {
			return true
		}
	}
	return false
}

// quietCore filters the underlying exporter's logs: it drops its advice to enable a sending
// queue (we have one) and turns its per-attempt error for 5xx/429 answers into a debug entry
// (our retry layer logs every retry; 4xx answers, which lose data, stay errors).
type quietCore struct {
	zapcore.Core
}

const (
	msgRejecting  = "Exporting failed. Rejecting data."
	msgSendFailed = "failed to send WriteRequest to remote endpoint"
)

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{Core: c.Core.With(fields)}
}

func (c quietCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(ent.Message, msgRejecting) {
		return ce
	}
	if ent.Message == msgSendFailed {
		// decided in Write, where the fields are known
		return ce.AddCore(ent, c)
	}
	return c.Core.Check(ent, ce)
}

func (c quietCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if ent.Message == msgSendFailed {
		for _, f := range fields {
			if f.Key == "status_code" && (f.Integer >= 500 || f.Integer == 429) {
				if !c.Enabled(zapcore.DebugLevel) {
					return nil
				}
				ent.Level = zapcore.DebugLevel
				ent.Stack = ""
				break
			}
		}
	}
	if !c.Enabled(ent.Level) {
		return nil
	}
	return c.Core.Write(ent, fields)
}
