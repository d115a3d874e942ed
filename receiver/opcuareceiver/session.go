package opcuareceiver

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uapolicy"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// session is one client connection with its session. A session is never reused after it was closed:
// every reconnect builds a new client, a new session, resolves the namespaces again and recreates the
// subscription.
type session struct {
	client     *opcua.Client
	endpoint   *ua.EndpointDescription
	serverCert *x509.Certificate
	namespaces []string
	items      []*item
	maxRead    int
	maxItems   int
	maxBrowse  int

	sub    *opcua.Subscription
	notifs chan *opcua.PublishNotificationData
	done   chan struct{}
	lost   atomic.Bool // set from the client's state callback when the connection dropped
	closed atomic.Bool

	events    []*eventItem      // one per events entry, when a logs pipeline takes them
	typeNames map[string]string // browse names of the event types seen in this session

	lastCurrentTime time.Time
	stalled         int
	beatSeq         uint64 // pollSeq of the last heartbeat that found the server answering with a moving clock
}

// item is one reading in one session: its spec, its node id as resolved for this session, and its
// series.
type item struct {
	spec   *readingSpec
	node   *ua.NodeID
	rv     *ua.ReadValueID
	entry  *seriesEntry
	err    error  // the node could not be resolved or monitored in this session
	status string // status name of err, for spans
	warned bool   // an unsupported value type was logged in this session
	// refusedAt: when the server last refused the node in a Read (a status of refusedStatus); it is
	// left out of the reads until refused_node_retry has passed. Zero: not refused.
	refusedAt time.Time
	seq       uint64 // pollSeq of the last value recorded (dedupe within a notification)
}

// seriesEntry is the series of one reading: the scalar series, or one per array index.
type seriesEntry struct {
	spec   *readingSpec
	scalar *device.Series
	index  []*device.Series
	labels []string // index label of each index series ("3", or "1,2" for a matrix)
	seq    uint64   // pollSeq of the last point (value or stale)

	// Kept for subscription.repeat_interval (mode subscribe) only.
	last     []heldPoint // the points of the last value; empty after a stale marker or an unusable value
	lastTime time.Time   // timestamp of the newest point (received or repeated), for its age
	lastSess int64       // the session (r.sessions) the value was received in
	// floor: the timestamp of the last repeated point while no received point has passed it. A
	// received value not after it is sent 1 ms after it, so the series stays in time order (Prometheus
	// refuses a whole remote-write request for one out-of-order sample).
	floor time.Time
}

// heldPoint is one point of a reading's last value.
type heldPoint struct {
	series *device.Series
	value  number // as converted: an integer stays one when repeated
}

// entry returns the series of a reading, registering it with the recorder on first use.
func (r *opcuaReceiver) entry(s *readingSpec) *seriesEntry {
	key := seriesKey(s.metric, s.attrs)
	if e, ok := r.series[key]; ok {
		return e
	}
	e := &seriesEntry{spec: s, scalar: r.rec.Series(s.metric, s.unit, s.description, deviceKind(s.kind), s.attrs)}
	r.series[key] = e
	return e
}

// indexSeries returns the series of one array element (label "" for a one-dimensional array).
func (r *opcuaReceiver) indexSeries(e *seriesEntry, flat int, label string) *device.Series {
	if flat < len(e.index) && e.index[flat] != nil && e.labels[flat] == label {
		return e.index[flat]
	}
	for len(e.index) <= flat {
		e.index = append(e.index, nil)
		e.labels = append(e.labels, "")
	}
	value := label
	if value == "" {
		value = strconv.Itoa(flat)
	}
	attrs := mergeAttrs(e.spec.attrs, map[string]string{attrIndex: value})
	e.index[flat] = r.rec.Series(e.spec.metric, e.spec.unit, e.spec.description, deviceKind(e.spec.kind), attrs)
	e.labels[flat] = label
	return e.index[flat]
}

func deviceKind(k device.MetricKind) device.MetricKind {
	if k == device.KindSum {
		return device.KindSum
	}
	return device.KindGauge
}

// connect opens a new session, browses, builds the items and, in mode subscribe, creates the
// subscription. Each step is a request span of the poll.
func (r *opcuaReceiver) connect(ctx context.Context, p *device.Poll) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	q := p.StartRequest("opcua.connect").Attr("opcua.endpoint", r.cfg.Endpoint)
	s, err := r.openSession(ctx)
	if err != nil {
		q.End(err)
		return err
	}
	q.Attr("opcua.security_policy", strings.TrimPrefix(s.endpoint.SecurityPolicyURI, ua.SecurityPolicyURIPrefix)).
		Attr("opcua.security_mode", modeName(s.endpoint.SecurityMode)).
		Attr("opcua.namespaces", len(s.namespaces)).
		Attr("opcua.max_nodes_per_read", s.maxRead)
	q.End(nil)

	var browsed []*readingSpec
	if len(r.browse) > 0 {
		bq := p.StartRequest("opcua.browse").Attr("opcua.service", "Browse")
		var err error
		browsed, err = r.browseAll(ctx, s, p, bq)
		bq.Attr("opcua.nodes", len(browsed))
		bq.End(err)
		if err != nil {
			r.closeSession(ctx, s)
			return err
		}
	}
	r.buildItems(s, browsed)

	if r.cfg.Mode == ModeSubscribe {
		if err := r.subscribe(ctx, p, s); err != nil {
			r.closeSession(ctx, s)
			return err
		}
	}
	if r.eventsWanted() {
		if err := r.subscribeEvents(ctx, p, s); err != nil {
			r.closeSession(ctx, s)
			return err
		}
	}
	r.sess = s
	r.sessions++
	resolved := 0
	for _, it := range s.items {
		if it.err == nil {
			resolved++
		}
	}
	r.logger.Info("Connected to the OPC UA server",
		zap.String("endpoint", r.cfg.Endpoint),
		zap.String("security_policy", strings.TrimPrefix(s.endpoint.SecurityPolicyURI, ua.SecurityPolicyURIPrefix)),
		zap.String("security_mode", modeName(s.endpoint.SecurityMode)),
		zap.Int("nodes", len(s.items)), zap.Int("nodes_usable", resolved),
		zap.Int("max_nodes_per_read", s.maxRead))
	return nil
}

// modeName is a security mode as configured (None, Sign, SignAndEncrypt).
func modeName(m ua.MessageSecurityMode) string {
	return strings.TrimPrefix(m.String(), "MessageSecurityMode")
}

// authTokenType is the user token type of the configured login.
func (r *opcuaReceiver) authTokenType() ua.UserTokenType {
	switch r.cfg.Auth.Type {
	case AuthUsername:
		return ua.UserTokenTypeUserName
	case AuthCertificate:
		return ua.UserTokenTypeCertificate
	}
	return ua.UserTokenTypeAnonymous
}

// selectEndpoint picks the endpoint for the configured policy, mode and login among those the server
// offers: auto takes the highest security level.
func (r *opcuaReceiver) selectEndpoint(eps []*ua.EndpointDescription) (*ua.EndpointDescription, error) {
	tok := r.authTokenType()
	supported := uapolicy.SupportedPolicies()
	var usable []*ua.EndpointDescription
	var offered []string
	for _, ep := range eps {
		offered = append(offered, fmt.Sprintf("%s/%s", strings.TrimPrefix(ep.SecurityPolicyURI, ua.SecurityPolicyURIPrefix), modeName(ep.SecurityMode)))
		if !slices.Contains(supported, ep.SecurityPolicyURI) {
			continue
		}
		if ep.SecurityMode != ua.MessageSecurityModeNone && r.clientCert == nil {
			continue
		}
		if !slices.ContainsFunc(ep.UserIdentityTokens, func(t *ua.UserTokenPolicy) bool { return t.TokenType == tok }) {
			continue
		}
		usable = append(usable, ep)
	}
	policy := ""
	if r.cfg.Security.Policy != PolicyAuto {
		policy = ua.FormatSecurityPolicyURI(string(r.cfg.Security.Policy))
	}
	mode := ua.MessageSecurityModeInvalid
	if r.cfg.Security.Mode != SecurityModeAuto {
		mode = ua.MessageSecurityModeFromString(string(r.cfg.Security.Mode))
	}
	ep, err := opcua.SelectEndpoint(usable, policy, mode)
	if err != nil {
		return nil, device.WithReason(device.Errorf(device.ErrConnection, "no endpoint with security policy %s, mode %s and %s login (the server offers %s)",
			r.cfg.Security.Policy, r.cfg.Security.Mode, r.cfg.Auth.Type, strings.Join(offered, ", ")), "no endpoint for the configured security and login")
	}
	return ep, nil
}

func (r *opcuaReceiver) openSession(ctx context.Context) (*session, error) {
	eps, err := opcua.GetEndpoints(ctx, r.cfg.Endpoint, opcua.RequestTimeout(r.cfg.Poll.Timeout), opcua.DialTimeout(r.cfg.ConnectTimeout))
	if err != nil {
		return nil, connectError(fmt.Errorf("get endpoints: %w", err))
	}
	ep, err := r.selectEndpoint(eps)
	if err != nil {
		return nil, err
	}
	s := &session{endpoint: ep, done: make(chan struct{})}
	if len(ep.ServerCertificate) > 0 {
		s.serverCert, _ = x509.ParseCertificate(ep.ServerCertificate)
	}
	if ep.SecurityMode != ua.MessageSecurityModeNone {
		// The client encrypts its OpenSecureChannel request with this certificate's key, so only the
		// holder of the trusted certificate's private key can complete the handshake.
		if err := r.trust.verify(ep.ServerCertificate, r.Clock().Now()); err != nil {
			return nil, device.WithReason(device.NewError(device.ErrConnection, err), "server certificate not trusted")
		}
	}

	opts := []opcua.Option{
		opcua.SecurityFromEndpoint(ep, r.authTokenType()),
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(r.requestTimeout()),
		opcua.DialTimeout(r.cfg.ConnectTimeout),
		opcua.SessionTimeout(r.cfg.SessionTimeout),
		opcua.ApplicationName("otelcol-iiot opcua receiver"),
		opcua.ProductURI("urn:otelcol-iiot"),
		opcua.SessionName("otelcol-iiot " + r.cfg.deviceID()),
		opcua.StateChangedFunc(func(st opcua.ConnState) {
			if (st == opcua.Disconnected || st == opcua.Closed) && !s.closed.Load() && !s.lost.Swap(true) {
				r.kickReconnect()
			}
		}),
	}
	if r.clientCert != nil {
		opts = append(opts, opcua.Certificate(r.clientCert.der), opcua.PrivateKey(r.clientCert.key))
	} else {
		appURI := r.cfg.Security.ApplicationURI
		if appURI == "" {
			appURI = defaultApplicationURI()
		}
		opts = append(opts, opcua.ApplicationURI(appURI))
	}
	switch r.cfg.Auth.Type {
	case AuthUsername:
		if ep.SecurityMode == ua.MessageSecurityModeNone && !r.warnedPlainPassword {
			r.warnedPlainPassword = true
			r.logger.Warn("The password is sent over an endpoint without security; it is protected only by the user token policy the server names (if any), and the server certificate used for that is not checked. Use a security policy other than None.")
		}
		opts = append(opts, opcua.AuthUsername(r.cfg.Auth.Username, string(r.cfg.Auth.Password)))
	case AuthCertificate:
		der, key := r.clientCertDER(), r.clientCertKey()
		if r.cfg.Auth.CertificateFile != "" {
			uc, err := loadClientCertificate(r.cfg.Auth.CertificateFile, r.cfg.Auth.PrivateKeyFile)
			if err != nil {
				return nil, device.NewError(device.ErrConnection, fmt.Errorf("auth certificate: %w", err))
			}
			der, key = uc.der, uc.key
		}
		opts = append(opts, opcua.AuthCertificate(der), opcua.AuthPrivateKey(key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}

	c, err := opcua.NewClient(r.cfg.Endpoint, opts...)
	if err != nil {
		return nil, device.NewError(device.ErrConnection, err)
	}
	s.client = c
	if err := c.Connect(ctx); err != nil {
		r.closeSession(ctx, s)
		return nil, connectError(fmt.Errorf("connect: %w", err))
	}
	s.namespaces = c.Namespaces()
	r.readLimits(ctx, s)
	return s, nil
}

// requestTimeout is the client's default request timeout. Every call of the receiver carries its own
// deadline (poll.timeout, connect_timeout), so it matters for the subscription's Publish requests only:
// the client waits for a Publish response max(keep-alive period, request timeout) and sends that as
// the request's TimeoutHint. A subscription with nothing to report answers only at its keep-alive, so
// with a hint equal to the keep-alive period the server may answer BadTimeout first, and the client
// library takes that fault as a broken connection: the session of a steady subscription would be
// rebuilt every few keep-alives. Twice the keep-alive period leaves the server room.
func (r *opcuaReceiver) requestTimeout() time.Duration {
	t := r.cfg.Poll.Timeout
	if r.cfg.Mode == ModeSubscribe || len(r.events) > 0 {
		sc := r.cfg.Subscription
		if ka := 2 * time.Duration(sc.KeepAliveCount) * sc.PublishingInterval; ka > t {
			t = ka
		}
	}
	return t
}

func (r *opcuaReceiver) clientCertDER() []byte {
	if r.clientCert == nil {
		return nil
	}
	return r.clientCert.der
}

func (r *opcuaReceiver) clientCertKey() *rsa.PrivateKey {
	if r.clientCert == nil {
		return nil
	}
	return r.clientCert.key
}

// readLimits reads the server's operation limits; a limit the server does not announce (0, or a node
// it does not have) falls back to max_nodes_per_read, which also caps them.
func (r *opcuaReceiver) readLimits(ctx context.Context, s *session) {
	s.maxRead, s.maxItems, s.maxBrowse = r.cfg.MaxNodesPerRead, r.cfg.MaxNodesPerRead, r.cfg.MaxNodesPerRead
	ids := []uint32{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
		id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for _, i := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, i), AttributeID: ua.AttributeIDValue})
	}
	resp, err := s.client.Read(ctx, req)
	if err != nil || len(resp.Results) != len(ids) {
		return
	}
	dst := []*int{&s.maxRead, &s.maxItems, &s.maxBrowse}
	for i, dv := range resp.Results {
		if dv == nil || isBad(dv.Status) || dv.Value == nil {
			continue
		}
		if n, ok := scalarValue(dv.Value.Value()); ok && n >= 1 && int(n) < *dst[i] {
			*dst[i] = int(n)
		}
	}
}

// buildItems resolves every reading's node id against the session's NamespaceArray.
func (r *opcuaReceiver) buildItems(s *session, browsed []*readingSpec) {
	all := append(slices.Clone(r.specs), browsed...)
	s.items = make([]*item, 0, len(all))
	r.known = r.known[:0]
	for _, spec := range all {
		it := &item{spec: spec, entry: r.entry(spec)}
		it.node, it.err = spec.ref.resolve(s.namespaces)
		if it.err != nil {
			it.status = "BadNodeIdUnknown"
			r.logger.Warn("Node cannot be read in this session", zap.String("node", spec.ref.text), zap.Error(it.err))
		} else {
			it.rv = &ua.ReadValueID{NodeID: it.node, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}
		}
		s.items = append(s.items, it)
		r.known = append(r.known, it.entry)
	}
}

// closeSession closes the client of a session (never used again) and ends its workers.
func (r *opcuaReceiver) closeSession(ctx context.Context, s *session) {
	if s.closed.Swap(true) {
		return
	}
	if s.client != nil {
		cctx, cancel := context.WithTimeout(ctx, closeTimeout)
		_ = s.client.Close(cctx)
		cancel()
	}
	close(s.done)
}

// dropSession closes the current session after it failed; the next poll builds a new one.
func (r *opcuaReceiver) dropSession(ctx context.Context, reason string) {
	s := r.sess
	if s == nil {
		return
	}
	r.sess = nil
	r.logger.Warn("OPC UA session lost; a new one will be opened", zap.String("reason", reason), zap.String("endpoint", r.cfg.Endpoint))
	r.closeSession(context.WithoutCancel(ctx), s)
}

// classify gives a client error its device error type: timeouts, connection failures, and status
// codes the server answered with.
func classify(err error) error {
	var de *device.Error
	if errors.As(err, &de) {
		return err
	}
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		switch sc {
		case ua.StatusBadTimeout, ua.StatusBadRequestTimeout:
			return device.NewError(device.ErrTimeout, err)
		case ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated,
			ua.StatusBadSecureChannelIDInvalid, ua.StatusBadSecureChannelClosed, ua.StatusBadConnectionClosed,
			ua.StatusBadServerNotConnected, ua.StatusBadNotConnected, ua.StatusBadCommunicationError,
			ua.StatusBadConnectionRejected, ua.StatusBadDisconnect, ua.StatusBadShutdown, ua.StatusBadServerHalted,
			ua.StatusBadTCPInternalError, ua.StatusBadTCPEndpointURLInvalid:
			return device.NewError(device.ErrConnection, err)
		}
		return device.NewError(device.ErrException, err)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return device.NewError(device.ErrTimeout, err)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return device.NewError(device.ErrConnection, err)
	}
	return device.NewError(device.ErrConnection, err)
}

// connectError classifies a failure to open a session: a timeout, else a connection error, even when
// the server answered with a status (a refused login or certificate leaves no usable session, so the
// device counts as down).
func connectError(err error) error {
	if device.Classify(classify(err)) == device.ErrTimeout {
		return device.NewError(device.ErrTimeout, err)
	}
	de := device.NewError(device.ErrConnection, err)
	if reason := refusalReason(err); reason != "" {
		return device.WithReason(de, reason)
	}
	return de
}

// refusalReason says why the server refused a connection or session, from the status code it answered
// with ("" if it answered none): a refused login reads differently from a server that is not there.
func refusalReason(err error) string {
	var sc ua.StatusCode
	if !errors.As(err, &sc) {
		return ""
	}
	name := statusName(sc)
	switch sc {
	case ua.StatusBadUserAccessDenied, ua.StatusBadIdentityTokenInvalid, ua.StatusBadIdentityTokenRejected,
		ua.StatusBadUserSignatureInvalid:
		return "login refused by the server (" + name + ")"
	case ua.StatusBadCertificateInvalid, ua.StatusBadCertificateUntrusted, ua.StatusBadCertificateTimeInvalid,
		ua.StatusBadCertificateIssuerTimeInvalid, ua.StatusBadCertificateHostNameInvalid, ua.StatusBadCertificateURIInvalid,
		ua.StatusBadCertificateUseNotAllowed, ua.StatusBadCertificateIssuerUseNotAllowed, ua.StatusBadCertificateRevoked,
		ua.StatusBadCertificateIssuerRevoked, ua.StatusBadCertificateRevocationUnknown, ua.StatusBadSecurityChecksFailed,
		ua.StatusBadCertificatePolicyCheckFailed:
		return "client certificate rejected by the server (" + name + ")"
	case ua.StatusBadSecurityPolicyRejected, ua.StatusBadSecurityModeRejected:
		return "security policy or mode rejected by the server (" + name + ")"
	case ua.StatusBadTooManySessions, ua.StatusBadMaxConnectionsReached, ua.StatusBadTCPServerTooBusy:
		return "server busy: too many sessions or connections (" + name + ")"
	case ua.StatusBadShutdown, ua.StatusBadServerHalted:
		return "server shutting down (" + name + ")"
	case ua.StatusBadConnectionClosed, ua.StatusBadConnectionRejected, ua.StatusBadCommunicationError,
		ua.StatusBadSecureChannelClosed, ua.StatusBadSecureChannelIDInvalid, ua.StatusBadNotConnected,
		ua.StatusBadServerNotConnected, ua.StatusBadDisconnect, ua.StatusBadTCPInternalError:
		return "" // the connection broke: the transport's account (refused, reset, closed) says more
	}
	return "refused by the server (" + name + ")"
}

// sessionBroken tells whether an error means the session cannot be used any more.
func sessionBroken(err error) bool {
	switch device.Classify(err) {
	case device.ErrConnection, device.ErrTimeout:
		return true
	}
	return false
}
