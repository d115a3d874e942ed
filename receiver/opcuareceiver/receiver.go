package opcuareceiver

import (
	"context"
	"errors"
	"net"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

const (
	attrIndex       = "index"
	attrNodeID      = "opcua.node_id"
	attrBrowsePath  = "opcua.browse_path"
	closeTimeout    = 2 * time.Second
	notifyQueueSize = 256
)

// opcuaReceiver polls one OPC UA server (one device). It is shared by the metrics and the traces
// pipeline of the same receiver config.
//
// Concurrency: the device is a source on the fleet (device.Fleet.AddSource): one goroutine, run, owns
// the session and everything below "owned by the device's loop", and selects on the poll ticks, the
// reconnect kicks and the subscription's notifications. Only kick is touched from other goroutines
// (the client's state callback).
type opcuaReceiver struct {
	cfg *Config
	*device.Fleet
	set    receiver.Settings
	logger *zap.Logger
	kick   chan struct{}

	specs       []*readingSpec
	browse      []*browseSpec
	events      []*eventSpec
	trust       *trustStore
	repeatEvery time.Duration // subscription.repeat_interval in mode subscribe, else 0

	// set by Start, before the loop runs
	host       component.Host
	rec        *device.Recorder
	mb         *metadata.MetricsBuilder
	clientCert *clientCertificate

	// owned by the device's loop
	sess                *session
	series              map[string]*seriesEntry
	known               []*seriesEntry // readings of the current (or last) session, marked stale when it fails
	groupLast           []time.Time    // poll mode: when each poll group was last read
	sessions            int64
	own                 ownSent
	statusOK            *bool // last reported component status (nil: none yet)
	warnedPlainPassword bool
	warnedKeepAlive     bool
	warnedRefresh       bool
	pollSeq             uint64

	logsMu  sync.RWMutex
	logs    consumer.Logs
	logsObs *receiverhelper.ObsReport // nil if it could not be made: the records still flow
}

// browseSpec is a browse entry with its defaults applied.
type browseSpec struct {
	ref      nodeRef
	maxDepth int
	maxNodes int
	filter   *regexp.Regexp
	defaults NodeDefaults
	group    int
}

func newReceiver(cfg *Config, set receiver.Settings) (*opcuaReceiver, error) {
	specs, err := cfg.readingSpecs()
	if err != nil {
		return nil, err
	}
	events, err := newEventSpecs(cfg)
	if err != nil {
		return nil, err
	}
	r := &opcuaReceiver{
		events: events,
		cfg:    cfg,
		Fleet:  device.NewFleet(set, metadata.ScopeName, cfg.Settings, cfg.health()),
		set:    set,
		logger: set.Logger,
		specs:  specs,
		trust:  newTrustStore(cfg.Security),
		series: map[string]*seriesEntry{},
		kick:   make(chan struct{}, 1),
	}
	if cfg.Mode == ModeSubscribe {
		r.repeatEvery = cfg.Subscription.RepeatInterval
	}
	groups := len(cfg.Groups) + 1
	top := NodeDefaults{MetricPrefix: cfg.MetricPrefix, MonitoredItemDefaults: cfg.Subscription.MonitoredItemDefaults}
	for i, b := range cfg.Browse {
		root := "i=85"
		if b.Root != "" {
			root = b.Root
		}
		ref, err := parseNodeRef(root, "")
		if err != nil {
			return nil, err
		}
		bs := &browseSpec{ref: ref, maxDepth: b.MaxDepth, maxNodes: b.MaxNodes, defaults: b.over(top), group: groups + i}
		if bs.maxDepth == 0 {
			bs.maxDepth = defaultBrowseMaxDepth
		}
		if bs.maxNodes == 0 {
			bs.maxNodes = defaultBrowseMaxNodes
		}
		if b.NameFilter != "" {
			if bs.filter, err = regexp.Compile(b.NameFilter); err != nil {
				return nil, err
			}
		}
		r.browse = append(r.browse, bs)
	}
	r.groupLast = make([]time.Time, groups+len(cfg.Browse))
	return r, nil
}

func (r *opcuaReceiver) setMetrics(c consumer.Metrics) { r.SetMetrics(c) }

func (r *opcuaReceiver) setTraces(c consumer.Traces) { r.SetTraces(c) }

// setLogs sets the logs pipeline: the events entries' records go there.
func (r *opcuaReceiver) setLogs(c consumer.Logs) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: r.set.ID, Transport: r.set.ID.Type().String(), ReceiverCreateSettings: r.set,
	})
	if err != nil {
		r.logger.Warn("Receiver self-telemetry of logs unavailable", zap.Error(err))
	}
	r.logsMu.Lock()
	defer r.logsMu.Unlock()
	r.logs, r.logsObs = c, obs
}

func (r *opcuaReceiver) logsConsumer() consumer.Logs {
	r.logsMu.RLock()
	defer r.logsMu.RUnlock()
	return r.logs
}

// emitLogs hands the records of one notification to the logs pipeline, through obsreport
// (otelcol_receiver_accepted_log_records / refused_log_records). A refusal loses them: the server
// does not send an event twice (a ConditionRefresh after a reconnect re-sends the active alarms).
func (r *opcuaReceiver) emitLogs(ctx context.Context, ld plog.Logs) {
	r.logsMu.RLock()
	next, obs := r.logs, r.logsObs
	r.logsMu.RUnlock()
	if next == nil {
		return
	}
	n := ld.LogRecordCount()
	opCtx := ctx
	if obs != nil {
		opCtx = obs.StartLogsOp(ctx)
	}
	err := next.ConsumeLogs(opCtx, ld)
	if obs != nil {
		obs.EndLogsOp(opCtx, "pdata", n, err)
	}
	if err != nil {
		r.logger.Warn("The logs pipeline refused event records; they are lost", zap.Int("count", n), zap.Error(err))
	}
}

// Start prepares the device and starts its loop, and returns at once: connecting happens in the first
// poll, so an unreachable server never blocks or fails Start. Start after Shutdown, or twice, does
// nothing.
func (r *opcuaReceiver) Start(ctx context.Context, host component.Host) error {
	if !device.Layer(true, r.cfg.Enabled) {
		r.logger.Info("OPC UA server disabled (enabled: false): not connected")
		return nil
	}
	if len(r.events) > 0 && r.logsConsumer() == nil {
		r.logger.Warn("events: configured, but the receiver is in no logs pipeline: events are not subscribed (add it to a logs pipeline)")
	}
	var err error
	r.Fleet.Start(ctx, host, func() { err = r.build(host) })
	return err
}

// build loads the client certificate, registers the readings and adds the device to the fleet.
func (r *opcuaReceiver) build(host component.Host) error {
	r.host = host
	now := r.Clock().Now()
	if r.needsClientCertificate() {
		c, generated, err := loadOrCreateClientCertificate(r.cfg.Security.CertificateFile, r.cfg.Security.PrivateKeyFile, r.cfg.Security.ApplicationURI, r.cfg.Security.CertificateValidity, now)
		if err != nil {
			err = errors.New("opcua client certificate: " + err.Error())
			componentstatus.ReportStatus(host, componentstatus.NewPermanentErrorEvent(err))
			return err
		}
		r.clientCert = c
		switch {
		case generated && r.cfg.Security.CertificateFile != "":
			r.logger.Info("Generated the client certificate; the server must trust it",
				zap.String("file", r.cfg.Security.CertificateFile), zap.String("application_uri", c.uri), zap.String("sha256", fingerprintSHA256(c.der)))
		case generated:
			r.logger.Warn("Generated an in-memory client certificate: it changes at every start, so a server cannot trust it for long; set security.certificate_file and security.private_key_file to keep it",
				zap.String("application_uri", c.uri), zap.String("sha256", fingerprintSHA256(c.der)))
		}
	}
	if r.cfg.Security.InsecureAcceptAnyServerCertificate {
		r.logger.Warn("security.insecure_accept_any_server_certificate is on: any server certificate is accepted, so a machine in the middle can read and change the data")
	}

	r.rec = r.Recorder(device.Identity{
		ID:           r.cfg.deviceID(),
		Protocol:     device.ProtocolOPCUA,
		Address:      r.cfg.Endpoint,
		Manufacturer: r.cfg.Manufacturer,
		Model:        r.cfg.Model,
		Attributes:   r.cfg.ResourceAttributes,
	})
	// Configured readings are registered up front, so their metrics keep the configured order.
	for _, s := range r.specs {
		r.entry(s)
	}
	// The builder writes only the opcua.* metrics: the recorder writes the health metrics.
	mbc := metadata.MetricsBuilderConfig{Metrics: r.cfg.Metrics, ResourceAttributes: metadata.DefaultResourceAttributesConfig()}
	r.mb = metadata.NewMetricsBuilder(mbc, r.set, metadata.WithStartTime(pcommon.NewTimestampFromTime(now)))
	trigger := "poll"
	if r.cfg.Mode == ModeSubscribe {
		trigger = "heartbeat"
	}
	scheduled := device.TargetFunc(func(ctx context.Context, p *device.Poll) { r.poll(ctx, p, trigger) })
	r.AddSource(r.rec, device.WithProbe(scheduled, r.probe), r.cfg.Poll, r.emit,
		func(ctx context.Context, runner *device.Runner, t *poll.Ticker) { r.run(ctx, runner, t, scheduled) })
	r.OnShutdown(func() {
		// The loop has ended: nobody else uses the session.
		if r.sess != nil {
			r.closeSession(context.Background(), r.sess)
			r.sess = nil
		}
	})
	componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusStarting))
	return nil
}

// run is the device's one goroutine: it owns the session and runs a poll on each tick (the heartbeat
// in mode subscribe), at once when the session is lost (so data resumes without waiting for the next
// tick), and for each notification message of the subscription.
func (r *opcuaReceiver) run(ctx context.Context, runner *device.Runner, t *poll.Ticker, scheduled device.Target) {
	reconnect := device.TargetFunc(func(ctx context.Context, p *device.Poll) { r.poll(ctx, p, "reconnect") })
	for {
		var notifs <-chan *opcua.PublishNotificationData
		if r.sess != nil {
			notifs = r.sess.notifs // nil in mode poll: never ready
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			runner.Run(ctx, scheduled)
			t.Next()
		case <-r.kick:
			if r.sess == nil || r.sess.lost.Load() {
				runner.Run(ctx, reconnect)
			}
		case d := <-notifs:
			if s := r.sess; !s.lost.Load() {
				received := r.Clock().Now()
				runner.Run(ctx, device.TargetFunc(func(ctx context.Context, p *device.Poll) {
					r.pollSeq++
					r.handleNotification(ctx, p, d, received)
				}))
			}
		}
	}
}

// probe dials the endpoint's TCP address: while the breaker is open after connection failures, a dial
// that succeeds again means the server is back (restarted), and the runner reconnects at once instead
// of waiting out the backoff.
func (r *opcuaReceiver) probe(ctx context.Context) error {
	u, err := url.Parse(r.cfg.Endpoint)
	if err != nil || u.Hostname() == "" {
		return device.ErrNoProbe
	}
	port := u.Port()
	if port == "" {
		port = "4840" // the IANA port of opc.tcp
	}
	return device.ProbeTCP(ctx, net.JoinHostPort(u.Hostname(), port), r.cfg.Poll.Timeout)
}

// needsClientCertificate: a secure channel may be used, or the user logs in with the application
// certificate.
func (r *opcuaReceiver) needsClientCertificate() bool {
	return r.cfg.Security.Policy != PolicyNone || r.cfg.Security.CertificateFile != "" ||
		(r.cfg.Auth.Type == AuthCertificate && r.cfg.Auth.CertificateFile == "")
}

func (r *opcuaReceiver) kickReconnect() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// poll is one poll of the device (the trigger says why: poll, heartbeat or reconnect): reconnect if
// needed, heartbeat, and the reads in mode poll.
func (r *opcuaReceiver) poll(ctx context.Context, p *device.Poll, trigger string) {
	r.pollSeq++
	p.Attr("opcua.trigger", trigger)
	if r.sess != nil && r.sess.lost.Load() {
		r.dropSession(ctx, "connection lost")
	}
	attempts := r.cfg.Poll.Retries + 1
	for attempt := 0; attempt < attempts && ctx.Err() == nil; attempt++ {
		if r.sess == nil {
			if err := r.connect(ctx, p); err != nil {
				if ctx.Err() == nil {
					p.Fail(err)
					r.staleAll(p)
					r.reportStatus(err)
				}
				return
			}
		}
		err := r.pollSession(ctx, p)
		if err == nil {
			r.reportStatus(nil)
			break
		}
		// The session broke during the poll (it has been dropped): reconnect and try again.
		if attempt == attempts-1 {
			r.staleAll(p)
			r.reportStatus(err)
		}
	}
	r.recordOwnMetrics(p)
}

// pollSession runs the heartbeat and, in mode poll, the reads on the current session. It returns an
// error only when the session failed and was dropped.
func (r *opcuaReceiver) pollSession(ctx context.Context, p *device.Poll) error {
	s := r.sess
	if r.cfg.Heartbeat.Enabled {
		if err := r.heartbeat(ctx, p, s); err != nil {
			return err
		}
	}
	r.recordEventErrors(p, s)
	if r.cfg.Mode == ModePoll {
		return r.readDue(ctx, p, s)
	}
	// Mode subscribe: readings whose monitored item could not be created stay stale; held values that
	// nothing refreshed for subscription.repeat_interval are sent again.
	for _, it := range s.items {
		if it.err != nil {
			r.recordItemError(p, it)
		}
	}
	r.repeatHeld(p, s)
	return nil
}

// reportStatus reports the component status when it changes: OK while polls succeed, a recoverable
// error while the server cannot be reached.
func (r *opcuaReceiver) reportStatus(err error) {
	ok := err == nil
	if r.statusOK != nil && *r.statusOK == ok {
		return
	}
	r.statusOK = &ok
	if ok {
		componentstatus.ReportStatus(r.host, componentstatus.NewEvent(componentstatus.StatusOK))
	} else {
		componentstatus.ReportStatus(r.host, componentstatus.NewRecoverableErrorEvent(err))
	}
}

// ownSent is what recordOwnMetrics last sent: like the device's health series, the receiver's own
// are sent when they change, else with the polls that send every health series.
type ownSent struct {
	at       time.Time // the poll that last sent them all
	sessions int64     // -1 before the first
	notAfter map[metadata.AttributeOpcuaCertificateRole]time.Time
}

// recordOwnMetrics records the receiver's own metrics (certificate validity, sessions) with the
// scheduled polls; they are appended to that poll's metrics by emit. opcua.sessions.established is
// recorded when it changed (a new session), the certificates' remaining validity when a certificate
// is new (another expiry) and the server's with each new session; both also with each poll that
// sends every health series (Poll.HealthDue), or the first scheduled poll a health interval after
// they were last all sent (in mode subscribe the due poll may be a notification, which records none).
func (r *opcuaReceiver) recordOwnMetrics(p *device.Poll) {
	now := p.Start()
	ts := pcommon.NewTimestampFromTime(now)
	o := &r.own
	if o.notAfter == nil {
		o.notAfter, o.sessions = map[metadata.AttributeOpcuaCertificateRole]time.Time{}, -1
	}
	all := p.HealthDue() || now.Sub(o.at) >= r.cfg.Poll.HealthInterval
	if all {
		o.at = now
	}
	newSession := r.sessions != o.sessions
	validity := func(notAfter time.Time, role metadata.AttributeOpcuaCertificateRole, fresh bool) {
		if last, ok := o.notAfter[role]; all || fresh || !ok || !last.Equal(notAfter) {
			o.notAfter[role] = notAfter
			r.mb.RecordOpcuaCertificateRemainingValidityDataPoint(ts, int64(notAfter.Sub(now)/time.Second), role)
		}
	}
	if r.clientCert != nil {
		validity(r.clientCert.cert.NotAfter, metadata.AttributeOpcuaCertificateRoleClient, false)
	}
	if r.sess != nil && r.sess.serverCert != nil {
		validity(r.sess.serverCert.NotAfter, metadata.AttributeOpcuaCertificateRoleServer, newSession)
	} else {
		delete(o.notAfter, metadata.AttributeOpcuaCertificateRoleServer)
	}
	if all || newSession {
		o.sessions = r.sessions
		r.mb.RecordOpcuaSessionsEstablishedDataPoint(ts, r.sessions)
	}
}

// emit hands one poll to the pipelines, with the receiver's own metrics recorded since the last one.
func (r *opcuaReceiver) emit(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
	own := r.mb.Emit()
	if own.ResourceMetrics().Len() > 0 && md.ResourceMetrics().Len() > 0 {
		dst := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
		for i := 0; i < own.ResourceMetrics().Len(); i++ {
			sms := own.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				sms.At(j).Metrics().MoveAndAppendTo(dst)
			}
		}
	}
	r.Emit(ctx, md, td)
}
