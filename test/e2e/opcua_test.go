//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const e2eNamespace = "urn:otelcol-iiot:e2e"

// nodeOPCUA is the node-opcua test server of test/e2e/opcua (installed by `make deps` with npm ci).
type nodeOPCUA struct {
	*process
	port     int
	pki      string
	certFile string
}

// startNodeOPCUA starts the server on port with its PKI in pki; extraNamespace registers another
// namespace before the test namespace, so the test namespace gets another index.
func startNodeOPCUA(t *testing.T, port int, pki string, extraNamespace bool) *nodeOPCUA {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "test", "e2e", "opcua")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua")); err != nil {
		t.Fatalf("node-opcua is not installed in %s: run 'make deps'", dir)
	}
	nodeBin, err := exec.LookPath("node")
	require.NoError(t, err, "node is not installed")
	extra := "0"
	if extraNamespace {
		extra = "1"
	}
	s := &nodeOPCUA{port: port, pki: pki, certFile: filepath.Join(pki, "server-cert.der")}
	s.process = &process{
		name: "node-opcua server",
		path: nodeBin,
		args: []string{"server.js"},
		dir:  dir,
		env: append(os.Environ(), "PORT="+strconv.Itoa(port), "PKI_DIR="+pki, "CERT_OUT="+s.certFile,
			"EXTRA_NAMESPACE="+extra, "OPCUA_USER=operator", "OPCUA_PASSWORD=s3cret-pw"),
	}
	s.register(t)
	s.start(t)
	require.Eventually(t, func() bool { return strings.Contains(s.output(), "ready opc.tcp://") },
		90*time.Second, 100*time.Millisecond, "node-opcua server did not start:\n%s", s.output())
	return s
}

func (s *nodeOPCUA) endpoint() string { return fmt.Sprintf("opc.tcp://127.0.0.1:%d", s.port) }

// namespaceIndex is the index the server printed for the test namespace at its last start.
func (s *nodeOPCUA) namespaceIndex(t *testing.T) int {
	m := regexp.MustCompile(`namespace \S+ index (\d+)`).FindAllStringSubmatch(s.output(), -1)
	require.NotEmpty(t, m)
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// write sets a node of the test namespace with a client of its own (anonymous, no security).
func (s *nodeOPCUA) write(t *testing.T, id string, v any) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := opcua.NewClient(s.endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
		if err != nil {
			return false
		}
		if err := c.Connect(ctx); err != nil {
			t.Logf("write %s: connect: %v", id, err)
			return false
		}
		defer c.Close(ctx)
		ns := -1
		for i, u := range c.Namespaces() {
			if u == e2eNamespace {
				ns = i
			}
		}
		if ns < 0 {
			return false
		}
		resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID:      ua.NewStringNodeID(uint16(ns), id),
			AttributeID: ua.AttributeIDValue,
			Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
		}}})
		if err != nil || len(resp.Results) != 1 || resp.Results[0] != ua.StatusOK {
			t.Logf("write %s: %v %v", id, err, resp)
			return false
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "could not write %s", id)
}

// metric selects a metric by name prefix (the remote-write exporter adds unit suffixes) and labels.
func metric(name string, labels ...string) string {
	sel := []string{fmt.Sprintf(`__name__=~"%s.*"`, strings.ReplaceAll(name, ".", "_"))}
	for i := 0; i+1 < len(labels); i += 2 {
		sel = append(sel, fmt.Sprintf(`%s=%q`, labels[i], labels[i+1]))
	}
	return "{" + strings.Join(sel, ",") + "}"
}

func (p *prometheus) eventuallyEmpty(t *testing.T, promql string, wait time.Duration) {
	t.Helper()
	var last []sample
	ok := assertEventually(wait, func() bool {
		var err error
		last, err = p.QueryE(promql)
		return err == nil && len(last) == 0
	})
	require.True(t, ok, "query %s: want no sample (stale), last result %v", promql, last)
}

func (p *prometheus) eventuallyPositive(t *testing.T, promql string, wait time.Duration) {
	t.Helper()
	var last []sample
	ok := assertEventually(wait, func() bool {
		var err error
		last, err = p.QueryE(promql)
		return err == nil && len(last) == 1 && last[0].Value > 0
	})
	require.True(t, ok, "query %s: want one positive sample, last result %v", promql, last)
}

// TestOPCUAPollingAnonymous: polling with no security into Prometheus; a Bad node gives a stale series
// and a counted error; the server restarts with another namespace registered first, and data continues
// under the same metric and labels without restarting the collector.
func TestOPCUAPollingAnonymous(t *testing.T) {
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	port := freePort(t)
	pki := t.TempDir()
	srv := startNodeOPCUA(t, port, pki, false)
	nsIndex := srv.namespaceIndex(t)

	data := vars{"Port": port, "Namespace": e2eNamespace, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "opcua/poll.yaml")

	dev := []string{"device_id", "e2e-poll", "site", "e2e"}
	wait := 60 * time.Second
	prom.expectValues(t, "opcua/poll_expected.yaml", data)
	prom.eventuallyPositive(t, metric("iiot.device.poll.errors", append(dev, "error_type", "unsupported_type")...), wait)
	assert.Empty(t, prom.Query(t, metric("opcua.e2e.label", dev...)), "a String node is not a metric")

	// A Bad node: its series goes stale at once and the error is counted.
	srv.write(t, "FlakyBad", true)
	prom.eventuallyEmpty(t, metric("opcua.e2e.flaky", dev...), wait)
	prom.eventuallyPositive(t, metric("iiot.device.poll.errors", append(dev, "error_type", "bad_status")...), wait)
	require.Eventually(t, func() bool {
		for _, s := range sink.Spans(t) {
			if s.Name == "opcua.read" && strings.Contains(fmt.Sprint(s.Attrs["opcua.status_codes"]), "BadNoCommunication") {
				return s.Resource["device.id"] == "e2e-poll"
			}
		}
		return false
	}, wait, 250*time.Millisecond, "the read span names the Bad status")
	srv.write(t, "FlakyBad", false)
	prom.eventuallyValue(t, metric("opcua.e2e.flaky", dev...), 5, wait)

	// The server restarts with another namespace first: our namespace's index changes.
	srv.stop(t)
	prom.eventuallyValue(t, metric("iiot.device.up", dev...), 0, wait)
	srv2 := startNodeOPCUA(t, port, pki, true)
	require.Equal(t, nsIndex+1, srv2.namespaceIndex(t), "the test namespace moved")
	srv2.write(t, "Temperature", 77.25)
	prom.eventuallyValue(t, metric("opcua.e2e.temperature", append(dev, "zone", "oven")...), 77.25, wait)
	prom.eventuallyValue(t, metric("iiot.device.up", dev...), 1, wait)
	prom.eventuallyPositive(t, metric("iiot.device.poll.errors", append(dev, "error_type", "connection")...), wait)
	prom.eventuallyValue(t, metric("opcua.sessions.established", dev...), 2, wait)
}

// TestOPCUASecureSubscriptionWithDeadband: Basic256Sha256 SignAndEncrypt with user name and password,
// subscriptions with an absolute and a percent deadband, a steady value repeated; a wrong password is
// refused and counted.
func TestOPCUASecureSubscriptionWithDeadband(t *testing.T) {
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	port := freePort(t)
	pki := t.TempDir()
	srv := startNodeOPCUA(t, port, pki, false)
	trusted := t.TempDir()
	der, err := os.ReadFile(srv.certFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(trusted, "server.der"), der, 0o600))
	clientDir := t.TempDir()

	data := vars{"Port": port, "Namespace": e2eNamespace, "ClientDir": clientDir, "TrustedDir": trusted,
		"RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, map[string]string{"OPCUA_PASSWORD": "s3cret-pw"}, data, "common.yaml", "opcua/secure.yaml")

	dev := []string{"device_id", "e2e-secure"}
	wait := 60 * time.Second
	prom.eventuallyValue(t, metric("opcua.sec.temperature", dev...), 21.5, wait)
	prom.eventuallyValue(t, metric("opcua.sec.level", dev...), 100, wait)

	// Changes inside the deadbands are not sent; larger ones are.
	srv.write(t, "Temperature", 23.0) // |Δ| 1.5 < 5
	srv.write(t, "Level", 110.0)      // 10 cm = 5 % of the 0..200 cm range < 10 %
	time.Sleep(2 * time.Second)       //nolint:forbidigo // give the filtered changes time to (not) arrive
	srv.write(t, "Temperature", 30.0) // |Δ| 8.5 ≥ 5
	srv.write(t, "Level", 125.0)      // 25 cm = 12.5 % ≥ 10 %
	prom.eventuallyValue(t, metric("opcua.sec.temperature", dev...), 30, wait)
	prom.eventuallyValue(t, metric("opcua.sec.level", dev...), 125, wait)
	assert.Empty(t, prom.Query(t, fmt.Sprintf(`%s == 23`, metric("opcua.sec.temperature", dev...))+" or "+
		fmt.Sprintf(`count_over_time((%s == 23)[5m:100ms]) > 0`, metric("opcua.sec.temperature", dev...))), "the change inside the deadband never arrived")
	assert.Empty(t, prom.Query(t, fmt.Sprintf(`count_over_time((%s == 110)[5m:100ms]) > 0`, metric("opcua.sec.level", dev...))), "the change inside the percent deadband never arrived")

	// The steady level is repeated (repeat_interval 2s, heartbeat 1s), so its series stays alive in
	// Prometheus: several samples of the one value arrived, none refused.
	level := metric("opcua.sec.level", dev...)
	prom.eventuallyPositive(t, fmt.Sprintf(`count_over_time(%s[10s]) >= 3 and min_over_time(%[1]s[10s]) == 125 and max_over_time(%[1]s[10s]) == 125`, level), wait)

	// The session is the secure one, and both certificates' validity is reported.
	require.Eventually(t, func() bool {
		for _, s := range sink.Spans(t) {
			if s.Name == "opcua.connect" && s.Resource["device.id"] == "e2e-secure" && s.Status != "Error" {
				return s.Attrs["opcua.security_policy"] == "Basic256Sha256" && s.Attrs["opcua.security_mode"] == "SignAndEncrypt"
			}
		}
		return false
	}, wait, 250*time.Millisecond, "a SignAndEncrypt session was opened")
	prom.eventuallyPositive(t, metric("opcua.certificate.remaining_validity", append(dev, "opcua_certificate_role", "server")...), wait)
	prom.eventuallyPositive(t, metric("opcua.certificate.remaining_validity", append(dev, "opcua_certificate_role", "client")...), wait)
	_, err = os.Stat(filepath.Join(clientDir, "secure", "client.pem"))
	assert.NoError(t, err, "the client certificate was generated at the configured path")

	// The server restarts with another namespace first: the secure session, the subscription and the
	// namespace index are rebuilt; changes arrive again under the same series.
	srv.stop(t)
	srv2 := startNodeOPCUA(t, port, pki, true)
	srv2.write(t, "Temperature", 99.5)
	prom.eventuallyValue(t, metric("opcua.sec.temperature", dev...), 99.5, wait)

	// The wrong password: no session, a connection error counted, the device down.
	wrong := []string{"device_id", "e2e-wrongpw"}
	prom.eventuallyValue(t, metric("iiot.device.up", wrong...), 0, wait)
	prom.eventuallyPositive(t, "sum("+metric("iiot.device.poll.errors", wrong...)+")", wait)
	assert.Empty(t, prom.Query(t, metric("opcua.sec.temperature", wrong...)))
}
