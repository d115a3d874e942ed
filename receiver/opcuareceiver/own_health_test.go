package opcuareceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

const (
	metricSessions = "opcua.sessions.established"
	metricValidity = "opcua.certificate.remaining_validity"
)

// pollSeries is what one poll (one emitted batch holding iiot.device.up) carried of the health series.
type pollSeries struct {
	up, requests, breaker bool
	sessions              float64 // -1: not carried
	roles                 map[string]bool
}

func (h *harness) polls() []pollSeries {
	var out []pollSeries
	for _, md := range h.metrics.AllMetrics() {
		ps := pollSeries{sessions: -1, roles: map[string]bool{}}
		for _, p := range points(md) {
			switch p.name {
			case device.MetricUp:
				ps.up = true
			case device.MetricRequests:
				ps.requests = true
			case device.MetricBreakerState:
				ps.breaker = true
			case metricSessions:
				ps.sessions = p.value
			case metricValidity:
				ps.roles[p.attrs["opcua.certificate.role"]] = true
			}
		}
		if ps.up {
			out = append(out, ps)
		}
	}
	return out
}

// startHealthIntervals starts the receiver on a manual clock with polls every 200 ms and a health
// interval of 2 s (10 polls), and runs 25 polls.
func startHealthIntervals(t *testing.T, cfg *Config) (*harness, *clock.Manual) {
	cfg.Poll.Interval = 200 * time.Millisecond
	cfg.Poll.HealthInterval = 2 * time.Second
	clk := clock.NewManual(time.Now())
	h := startReceiverOn(t, cfg, clk)
	for range 25 {
		h.step(t, clk, cfg.Poll.Interval)
	}
	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 21.5)
	return h, clk
}

// The receiver's own health series (sessions, certificates' validity) go out with the device's health
// series once a health interval, not at every poll, and at once when a new session brings the server's
// certificate back. The device's clock is manual: a health interval is exactly 10 polls.
func TestOwnHealthSeriesSentOnChangeElseEveryHealthInterval(t *testing.T) {
	proxy := startFreezeProxy(t)
	srv := startSim(t, sim.Config{Security: []string{"Basic256Sha256:SignAndEncrypt"}, AdvertiseEndpoints: []string{proxy.l.Addr().String()}})
	proxy.setTarget(srv.Endpoint()[len("opc.tcp://"):])
	dir := t.TempDir()
	cfg := testConfig(proxy.endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyBasic256Sha256, SecurityModeSignAndEncrypt
	cfg.Security.CertificateFile, cfg.Security.PrivateKeyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	cfg.Security.ServerCertificateFingerprints = []string{fingerprintSHA256(srv.CertificateDER())}
	cfg.Nodes = plantNodes()[:1]
	h, clk := startHealthIntervals(t, cfg)

	var withSessions, withServer, withClient, withRequests []int
	for i, p := range h.polls() {
		if p.sessions >= 0 {
			withSessions = append(withSessions, i)
			assert.Equal(t, 1.0, p.sessions)
		}
		if p.roles["server"] {
			withServer = append(withServer, i)
		}
		if p.roles["client"] {
			withClient = append(withClient, i)
		}
		if p.requests {
			withRequests = append(withRequests, i)
		}
	}
	want := []int{0, 10, 20}
	assert.Equal(t, want, withSessions, "sessions: the first poll, then once a health interval")
	assert.Equal(t, want, withServer, "server certificate")
	assert.Equal(t, want, withClient, "client certificate")
	assert.Equal(t, []int{0, 1, 10, 20}, withRequests,
		"the device's requests go out with them, and at poll 1, the first of one read only (poll 0 also connected)")

	// The connection breaks: the poll of the new session sends the sessions counter and the server's
	// certificate at once.
	proxy.cut()
	var back pollSeries
	for i := 0; ; i++ {
		require.Less(t, i, 200, "no second session: %s", h.summary())
		h.step(t, clk, cfg.Poll.Interval)
		polls := h.polls()
		if last := polls[len(polls)-1]; last.sessions == 2 {
			back = last
			break
		}
	}
	assert.True(t, back.roles["server"], "the new session's server certificate goes out with it")
}

// In mode subscribe the polls are the heartbeats and the notification messages; the receiver's own
// series go out with heartbeats only, still once a health interval.
func TestOwnHealthSeriesInModeSubscribe(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Mode = ModeSubscribe
	cfg.Nodes = plantNodes()[:2]
	h, _ := startHealthIntervals(t, cfg)
	withSessions := 0
	for _, p := range h.polls() {
		if p.sessions >= 0 {
			withSessions++
		}
	}
	assert.Equal(t, 3, withSessions, "the first heartbeat, then once a health interval (2 s: 10 heartbeats) over 25 heartbeats and the notifications")
	assert.Greater(t, len(h.polls()), 25, "notification messages are polls too")
}
