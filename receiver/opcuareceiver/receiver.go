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
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
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

// workKind is what one RunOnce of the device's runner does.
type workKind int

const (
	workPoll      workKind = iota // scheduled: (re)connect if needed, heartbeat, reads in mode poll
	workReconnect                 // the session was lost: reconnect now, outside the schedule
	workNotify                    // one notification message of the subscription
)

type work struct {
	kind     workKind
	data     *opcua.PublishNotificationData
	received time.Time
}

// opcuaReceiver polls one OPC UA server (one device). It is shared by the metrics and the traces
// pipeline of the same receiver config.
//
// Concurrency: everything below "owned by the link holder" is touched only by the goroutine that holds
// link (a poll.Link of one): the scheduler's poll, the reconnect worker and the notification worker
// each acquire it before running the device's Runner, so the Recorder and the session have one owner
// at a time.
type opcuaReceiver struct {
	cfg    *Config
	set    receiver.Settings
	logger *zap.Logger
	clock  clock.Clock

	consumers *device.Consumers // the metrics and traces pipelines sharing this receiver

	startOnce, stopOnce sync.Once
	ctx                 context.Context
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
	sched               *poll.Scheduler
	link                *poll.Link
	// runMu is held with the link around every RunOnce: the link serialises the polls, runMu makes the
	// hand-over of the state below explicit to the race detector, which reported the channel hand-over
	// of a poll.Link as unordered here.
	runMu sync.Mutex
	kick  chan struct{}
	host  component.Host

	specs       []*readingSpec
	browse      []*browseSpec
	trust       *trustStore
	repeatEvery time.Duration // subscription.repeat_interval in mode subscribe, else 0

	// owned by the link holder
	runner              *device.Runner
	rec                 *device.Recorder
	mb                  *metadata.MetricsBuilder
	clientCert          *clientCertificate
	sess                *session
	cur                 work
	series              map[string]*seriesEntry
	known               []*seriesEntry // readings of the current (or last) session, marked stale when it fails
	groupLast           []time.Time    // poll mode: when each poll group was last read
	sessions            int64
	statusOK            *bool // last reported component status (nil: none yet)
	warnedPlainPassword bool
	warnedKeepAlive     bool
	pollSeq             uint64
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
	r := &opcuaReceiver{
		cfg:       cfg,
		set:       set,
		logger:    set.Logger,
		consumers: device.NewConsumers(set),
		clock:     clock.Real{},
		specs:     specs,
		trust:     newTrustStore(cfg.Security),
		series:    map[string]*seriesEntry{},
		kick:      make(chan struct{}, 1),
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
		bs := &browseSpec{ref: ref, maxDepth: b.MaxDepth, maxNodes: b.MaxNodes, defaults: b.NodeDefaults.over(top), group: groups + i}
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

func (r *opcuaReceiver) setMetrics(c consumer.Metrics) { r.consumers.SetMetrics(c) }

func (r *opcuaReceiver) setTraces(c consumer.Traces) { r.consumers.SetTraces(c) }

// Start prepares the poller and returns at once: connecting happens in the first poll, so an
// unreachable server never blocks or fails Start.
func (r *opcuaReceiver) Start(_ context.Context, host component.Host) error {
	var err error
	r.startOnce.Do(func() { err = r.start(host) })
	return err
}

func (r *opcuaReceiver) start(host component.Host) error {
	r.host = host
	now := r.clock.Now()
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

	r.rec = device.NewRecorder(device.Identity{
		ID:           r.cfg.deviceID(),
		Protocol:     device.ProtocolOPCUA,
		Address:      r.cfg.Endpoint,
		Manufacturer: r.cfg.Manufacturer,
		Model:        r.cfg.Model,
		Attributes:   r.cfg.ResourceAttributes,
	}, device.RecorderSettings{
		Scope:   device.Scope{Name: metadata.ScopeName, Version: r.set.BuildInfo.Version},
		Health:  r.cfg.health(),
		Traces:  r.cfg.Traces,
		Service: r.set.ID.String(),
		Start:   now,
	})
	// Configured readings are registered up front, so their metrics keep the configured order.
	for _, s := range r.specs {
		r.entry(s)
	}
	// The builder writes only the opcua.* metrics: the recorder writes the health metrics.
	mbc := metadata.MetricsBuilderConfig{Metrics: r.cfg.Metrics, ResourceAttributes: metadata.DefaultResourceAttributesConfig()}
	r.mb = metadata.NewMetricsBuilder(mbc, r.set, metadata.WithStartTime(pcommon.NewTimestampFromTime(now)))
	r.runner = device.NewRunner(r.rec, device.WithProbe(device.TargetFunc(r.poll), r.probe), r.cfg.Breaker, r.clock, r.logger, r.emit)
	r.link = poll.NewLink(r.clock, 1, 0)
	r.sched = poll.NewScheduler(r.clock, uint64(now.UnixNano()))
	r.sched.Add(poll.Job{
		Interval: r.cfg.Poll.Interval,
		Jitter:   r.cfg.Poll.Jitter,
		Link:     r.link,
		Run: func(ctx context.Context) {
			r.runMu.Lock()
			defer r.runMu.Unlock()
			r.cur = work{kind: workPoll}
			r.runner.RunOnce(ctx)
		},
	})
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.sched.Start(r.ctx)
	r.wg.Add(1)
	go r.reconnectWorker()
	componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusStarting))
	return nil
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

// Shutdown stops polling, closes the session and waits for every goroutine. Safe without Start and
// more than once.
func (r *opcuaReceiver) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.startOnce.Do(func() {}) // a later Start does nothing
		if r.cancel == nil {
			return
		}
		r.cancel()
		done := make(chan struct{})
		go func() {
			r.sched.Stop()
			r.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
			// Every worker has stopped: nobody else holds the link any more.
			if r.sess != nil {
				r.closeSession(ctx, r.sess)
				r.sess = nil
			}
		case <-ctx.Done():
		}
	})
	return nil
}

// reconnectWorker runs an extra poll at once when a session is lost, so data resumes without waiting
// for the next scheduled poll (the heartbeat interval in mode subscribe).
func (r *opcuaReceiver) reconnectWorker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
			if err := r.link.Acquire(r.ctx); err != nil {
				return
			}
			r.runMu.Lock()
			if r.sess == nil || r.sess.lost.Load() {
				r.cur = work{kind: workReconnect}
				r.runner.RunOnce(r.ctx)
			}
			r.runMu.Unlock()
			r.link.Release()
		}
	}
}

func (r *opcuaReceiver) kickReconnect() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// notificationWorker turns the notifications of one session's subscription into polls.
func (r *opcuaReceiver) notificationWorker(s *session) {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-s.done:
			return
		case d := <-s.notifs:
			received := r.clock.Now()
			if err := r.link.Acquire(r.ctx); err != nil {
				return
			}
			r.runMu.Lock()
			if r.sess == s && !s.lost.Load() {
				r.cur = work{kind: workNotify, data: d, received: received}
				r.runner.RunOnce(r.ctx)
				r.cur = work{}
			}
			r.runMu.Unlock()
			r.link.Release()
		}
	}
}

// poll is the device's Target: what one RunOnce does.
func (r *opcuaReceiver) poll(ctx context.Context, p *device.Poll) {
	r.pollSeq++
	switch r.cur.kind {
	case workNotify:
		r.handleNotification(p, r.cur.data, r.cur.received)
		return
	case workReconnect:
		p.Attr("opcua.trigger", "reconnect")
	default:
		if r.cfg.Mode == ModeSubscribe {
			p.Attr("opcua.trigger", "heartbeat")
		} else {
			p.Attr("opcua.trigger", "poll")
		}
	}
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
	r.recordOwnMetrics(p.Start())
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

// recordOwnMetrics records the receiver's own metrics (certificate validity, sessions) with the
// scheduled polls; they are appended to that poll's metrics by emit.
func (r *opcuaReceiver) recordOwnMetrics(now time.Time) {
	ts := pcommon.NewTimestampFromTime(now)
	if r.clientCert != nil {
		r.mb.RecordOpcuaCertificateRemainingValidityDataPoint(ts, int64(r.clientCert.cert.NotAfter.Sub(now)/time.Second), metadata.AttributeOpcuaCertificateRoleClient)
	}
	if r.sess != nil && r.sess.serverCert != nil {
		r.mb.RecordOpcuaCertificateRemainingValidityDataPoint(ts, int64(r.sess.serverCert.NotAfter.Sub(now)/time.Second), metadata.AttributeOpcuaCertificateRoleServer)
	}
	r.mb.RecordOpcuaSessionsEstablishedDataPoint(ts, r.sessions)
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
	r.consumers.Emit(ctx, md, td)
}
