//go:build e2e

// Package e2e runs the built otelcol-iiot binary against real peers (Prometheus from Debian, a second
// collector as trace sink, device servers) on loopback, and asserts what arrives.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// repoRoot is the root of the repository (two levels above this package).
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	require.NoError(t, err)
	return root
}

// binary is a program the tests run: the path in an environment variable (what `make e2e` passes),
// else built once per test run by a command in the repository root.
type binary struct {
	env   string   // variable holding a prebuilt binary's path
	path  string   // where build puts it, relative to the root
	build []string // command that builds it
	once  sync.Once
	err   error
	got   string
}

func (b *binary) get(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		if p := os.Getenv(b.env); p != "" {
			b.got = p
			_, b.err = os.Stat(p)
			return
		}
		root := repoRoot(t)
		b.got = filepath.Join(root, b.path)
		cmd := exec.Command(b.build[0], b.build[1:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s: %w\n%s", strings.Join(b.build, " "), err, out)
		}
	})
	require.NoError(t, b.err)
	return b.got
}

var edgeBinary = &binary{env: "OTELCOL_IIOT_BINARY", path: "_build/otelcol-iiot",
	build: []string{"go", "build", "-trimpath", "-o", "_build/otelcol-iiot", "./cmd/otelcol-iiot"}}

// buildCollector returns the path of the edge collector binary.
func buildCollector(t testing.TB) string { return edgeBinary.get(t) }

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is a child process whose output is kept for the test log.
type process struct {
	name string
	path string
	args []string
	env  []string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var outputMu sync.Mutex

func (p *process) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil {
		p.out = &bytes.Buffer{}
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	w := lockedWriter{&outputMu, p.out}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start %s", p.name)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
}

// stop sends SIGTERM and waits up to 15s, then kills the process group.
func (p *process) stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// output returns what the process printed so far.
func (p *process) output() string {
	outputMu.Lock()
	defer outputMu.Unlock()
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// register stops the process at the end of the test and prints its output if the test failed.
func (p *process) register(t testing.TB) {
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			out := p.output()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			t.Logf("---- output of %s ----\n%s", p.name, out)
		}
	})
}

// ---- Prometheus -------------------------------------------------------------------------------

type prometheus struct {
	*process
	port int
}

type sample struct {
	Labels map[string]string
	Value  float64
}

// startPrometheus starts a real Prometheus (Debian's package) with the remote-write receiver on, on a
// free loopback port with its own data directory, and waits until it is ready.
func startPrometheus(t testing.TB) *prometheus {
	t.Helper()
	return startPrometheusConfig(t, "global:\n  scrape_interval: 15s\n")
}

// startPrometheusWithRules is startPrometheus with rule files (paths) loaded and evaluated every
// evaluationInterval; their ALERTS and recorded series are queried like any other.
func startPrometheusWithRules(t testing.TB, evaluationInterval time.Duration, ruleFiles ...string) *prometheus {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: 15s\n  evaluation_interval: %s\nrule_files:\n", evaluationInterval)
	for _, f := range ruleFiles {
		abs, err := filepath.Abs(f)
		require.NoError(t, err)
		fmt.Fprintf(&b, "  - %q\n", abs)
	}
	return startPrometheusConfig(t, b.String())
}

// startPrometheusConfig starts Prometheus with the given prometheus.yml content.
func startPrometheusConfig(t testing.TB, config string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	require.NoError(t, err, "prometheus not installed: run 'make deps'")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o600))
	port := freePort(t)
	p := &prometheus{port: port, process: &process{
		name: "prometheus",
		path: bin,
		args: []string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--web.enable-remote-write-receiver",
			"--query.lookback-delta=1m",
			"--log.level=warn",
		},
		env: os.Environ(),
		dir: dir,
	}}
	p.register(t)
	p.Start(t)
	return p
}

// Start (re)starts Prometheus on its port and data directory and waits until it is ready.
func (p *prometheus) Start(t testing.TB) {
	t.Helper()
	p.start(t)
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.URL() + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 200*time.Millisecond, "prometheus did not become ready:\n%s", p.output())
}

// Stop stops Prometheus; its data stays for the next Start.
func (p *prometheus) Stop(t testing.TB) { p.stop(t) }

// URL is the base URL of Prometheus' HTTP API.
func (p *prometheus) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.port) }

// RemoteWriteURL is where the collector writes.
func (p *prometheus) RemoteWriteURL() string { return p.URL() + "/api/v1/write" }

// QueryE runs an instant query and returns the vector (or scalar) result.
func (p *prometheus) QueryE(promql string) ([]sample, error) {
	resp, err := http.Get(p.URL() + "/api/v1/query?query=" + url.QueryEscape(promql))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", promql, body.Error)
	}
	parse := func(v []any) (float64, error) {
		s, _ := v[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(vec))
		for _, v := range vec {
			f, err := parse(v.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Labels: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v []any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parse(v)
		return []sample{{Value: f}}, err
	}
	return nil, fmt.Errorf("query %q: unsupported result type %s", promql, body.Data.ResultType)
}

// Query runs an instant query and fails the test on error.
func (p *prometheus) Query(t testing.TB, promql string) []sample {
	t.Helper()
	s, err := p.QueryE(promql)
	require.NoError(t, err)
	return s
}

// eventuallyValue waits until promql returns exactly one sample equal to want (within 1e-9 relative).
func (p *prometheus) eventuallyValue(t testing.TB, promql string, want float64, wait time.Duration) {
	t.Helper()
	var last []sample
	var lastErr error
	ok := assertEventually(wait, func() bool {
		last, lastErr = p.QueryE(promql)
		if lastErr != nil || len(last) != 1 {
			return false
		}
		got := last[0].Value
		return got == want || (want != 0 && abs((got-want)/want) < 1e-9)
	})
	require.True(t, ok, "query %s: want %v, last result %v (err %v)", promql, want, last, lastErr)
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// assertEventually polls cond every 250ms until it holds or wait has passed.
func assertEventually(wait time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// ---- collectors ---------------------------------------------------------------------------------

type collector struct {
	*process
	configPath string
}

// startCollectorFiles runs the collector on config files (merged in order, as --config flags are).
func startCollectorFiles(t testing.TB, env map[string]string, configFiles ...string) *collector {
	t.Helper()
	return startBinaryFiles(t, buildCollector(t), env, configFiles...)
}

// startBinaryFiles runs bin (the edge or the gateway distribution) on config files.
func startBinaryFiles(t testing.TB, bin string, env map[string]string, configFiles ...string) *collector {
	t.Helper()
	environ := os.Environ()
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var args []string
	for _, f := range configFiles {
		args = append(args, "--config="+f)
	}
	c := &collector{configPath: configFiles[0], process: &process{
		name: filepath.Base(bin) + " " + t.Name(),
		path: bin,
		args: args,
		env:  environ,
		dir:  t.TempDir(),
	}}
	c.register(t)
	c.start(t)
	return c
}

// Stop stops the collector (SIGTERM, then SIGKILL after 15s).
func (c *collector) Stop(t testing.TB) { c.stop(t) }

// Restart stops the collector and starts it again with the same config and environment.
func (c *collector) Restart(t testing.TB) {
	c.stop(t)
	c.start(t)
}

// traceSink is a second collector: OTLP gRPC and HTTP receiver -> file exporter (JSON lines).
type traceSink struct {
	*collector
	port     int
	httpPort int
	file     string
}

type span struct {
	Name     string
	TraceID  string
	SpanID   string
	ParentID string
	Kind     string
	Status   string
	Attrs    map[string]any
	Resource map[string]any
}

// startTraceSink starts a second collector that writes every span it receives to a file.
func startTraceSink(t testing.TB) *traceSink {
	t.Helper()
	port, httpPort := freePort(t), freePort(t)
	file := filepath.Join(t.TempDir(), "spans.jsonl")
	s := &traceSink{collector: startCollectorTestdata(t, nil, vars{"Port": port, "HTTPPort": httpPort, "File": file}, "tracesink.yaml"),
		port: port, httpPort: httpPort, file: file}
	s.name = "trace sink"
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", s.Endpoint())
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}, 30*time.Second, 100*time.Millisecond, "trace sink did not listen:\n%s", s.output())
	return s
}

// Endpoint is the sink's OTLP gRPC endpoint (host:port).
func (s *traceSink) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// HTTPURL is the sink's OTLP/HTTP base URL (an otlp_http exporter appends /v1/traces, /v1/logs).
func (s *traceSink) HTTPURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) }

// Spans returns every span received so far.
func (s *traceSink) Spans(t testing.TB) []span {
	t.Helper()
	data, err := os.ReadFile(s.file)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []span
	var um ptrace.JSONUnmarshaler
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.Contains(line, `"resourceLogs"`) {
			continue // log records (Logs reads them)
		}
		td, err := um.UnmarshalTraces([]byte(line))
		if err != nil {
			continue // a line still being written
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			res := rs.Resource().Attributes().AsRaw()
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					sp := ss.At(k)
					out = append(out, span{
						Name:     sp.Name(),
						TraceID:  sp.TraceID().String(),
						SpanID:   sp.SpanID().String(),
						ParentID: sp.ParentSpanID().String(),
						Kind:     sp.Kind().String(),
						Status:   sp.Status().Code().String(),
						Attrs:    sp.Attributes().AsRaw(),
						Resource: res,
					})
				}
			}
		}
	}
	return out
}

// logRecord is one log record the sink received.
type logRecord struct {
	Body           string
	Severity       plog.SeverityNumber
	SeverityText   string
	EventName      string
	Time, Observed time.Time
	Attrs          map[string]any
	Resource       map[string]any
	// Arrived is when the sink's file first held the record (the poll of the file that found it).
	Arrived time.Time
}

// Logs returns every log record received so far, in the order the sink wrote them.
func (s *traceSink) Logs(t testing.TB) []logRecord {
	t.Helper()
	data, err := os.ReadFile(s.file)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	now := time.Now()
	var out []logRecord
	var um plog.JSONUnmarshaler
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"resourceLogs"`) {
			continue // spans, or a line still being written
		}
		ld, err := um.UnmarshalLogs([]byte(line))
		if err != nil {
			continue
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			res := rl.Resource().Attributes().AsRaw()
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					out = append(out, logRecord{
						Body: lr.Body().AsString(), Severity: lr.SeverityNumber(), SeverityText: lr.SeverityText(),
						EventName: lr.EventName(), Time: lr.Timestamp().AsTime(), Observed: lr.ObservedTimestamp().AsTime(),
						Attrs: lr.Attributes().AsRaw(), Resource: res, Arrived: now,
					})
				}
			}
		}
	}
	return out
}

// runCollectorCommand runs the binary with args and returns its combined output and error.
func runCollectorCommand(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildCollector(t), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
