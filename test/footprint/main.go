// Command footprint measures the edge collector's footprint on fixed workloads (issue 17): CPU per
// device-poll, peak and steady memory, remote-write bytes per sample and per device-poll, and the binary's
// size. Each workload is a separate run of the built binary on the shipped edge default configuration
// (distributions/otelcol-iiot/config.yaml), against pymodbus or cmd/opcuasim on loopback and a
// remote-write sink in this program. Run from the repository root:
//
//	go run ./test/footprint -binary _build/otelcol-iiot [-polls 60] [-workloads modbus-2units,idle]
//
// It prints a markdown table on stdout and its progress on stderr.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type options struct {
	binary, config, python, server, opcuasim string
	upMetric, requestsMetric                 string
	polls                                    int
	interval                                 time.Duration
	only                                     map[string]bool
	keep                                     bool
	envFile                                  string
	env                                      map[string]string // Go runtime settings given to the collector
	envFrom                                  map[string]string
	profile                                  string   // directory for pprof profiles of the window
	breakdown                                bool     // print where the remote-write bytes go
	extra                                    []string // more --config files, after the workload's overlay
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1) //nolint:forbidigo // a command's exit status
	}
}

func run(args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("footprint", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.binary, "binary", "_build/otelcol-iiot", "the edge collector binary")
	fs.StringVar(&o.config, "config", "distributions/otelcol-iiot/config.yaml", "the edge default configuration")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "a python3 with pymodbus 3.0 (Debian python3-pymodbus)")
	fs.StringVar(&o.server, "modbus-server", "test/footprint/server.py", "the pymodbus server script")
	fs.StringVar(&o.opcuasim, "opcuasim", "", "the cmd/opcuasim binary (default: go build ./cmd/opcuasim into the work directory)")
	fs.StringVar(&o.upMetric, "up-metric", "iiot_device_up", "the health series written once per device poll (counts device-polls)")
	fs.StringVar(&o.requestsMetric, "requests-metric", "iiot_device_requests_total", "the health series counting a device's requests")
	fs.IntVar(&o.polls, "polls", 60, "polls measured per workload (after the first sample reaches the sink)")
	fs.DurationVar(&o.interval, "interval", time.Second, "poll interval")
	names := fs.String("workloads", "", "comma-separated workloads to run (default all: "+workloadNames()+")")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, collector logs)")
	fs.StringVar(&o.envFile, "env-file", "distributions/otelcol-iiot/otelcol-iiot.conf",
		"the packaged env file: its GOGC and GOMEMLIMIT reach the collector as they reach the service (empty: none)")
	var overrides envList
	fs.Var(&overrides, "env", "NAME=VALUE for the collector, over the env file and the environment (repeatable), e.g. -env GOGC=100")
	fs.StringVar(&o.profile, "profile", "", "directory: enable the collector's pprof extension and write <workload>.cpu.pprof and .allocs.pprof of the window, and .heap.pprof and .heap.txt (in-use heap, MemStats) at its end, there (the profiling itself costs CPU: figures of a profiled run are not comparable)")
	fs.BoolVar(&o.breakdown, "breakdown", false, "after the table, take each workload's remote-write requests apart: per metric family series, samples, label and sample bytes before and after snappy; the share of host metrics, health series, target_info and readings; what the requests would cost without the host metrics (device data only, as a collector polling only the devices sends) and with timestamps aligned to the poll interval")
	var extra fileList
	fs.Var(&extra, "overlay", "a configuration file given to the collector after the edge default and the workload's overlay (repeatable), e.g. a 10 s flush or other host metrics to measure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.extra = []string(extra)
	var err error
	if o.env, o.envFrom, err = runtimeEnv(o.envFile, os.Getenv, overrides); err != nil {
		return err
	}
	if o.polls < 5 {
		return fmt.Errorf("-polls: at least 5, got %d", o.polls)
	}
	if o.interval < 100*time.Millisecond {
		return fmt.Errorf("-interval: at least 100ms, got %s", o.interval)
	}
	if *names != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(*names, ",") {
			if !strings.Contains(","+workloadNames()+",", ","+n+",") {
				return fmt.Errorf("-workloads: unknown %q (known: %s)", n, workloadNames())
			}
			o.only[n] = true
		}
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o750); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
	}
	// children run in their own directories: every path given becomes absolute
	files := []*string{&o.binary, &o.config, &o.server, &o.opcuasim, &o.profile}
	for i := range o.extra {
		files = append(files, &o.extra[i])
	}
	for _, f := range files {
		if *f == "" {
			continue
		}
		if _, err := os.Stat(*f); err != nil {
			return fmt.Errorf("%w (run from the repository root after `make build`)", err)
		}
		abs, err := filepath.Abs(*f)
		if err != nil {
			return err
		}
		*f = abs
	}

	work, err := os.MkdirTemp("", "footprint-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(progress, "work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}

	size, stripped, err := binarySizes(o.binary, work)
	if err != nil {
		return err
	}

	var results []result
	for _, w := range workloads {
		if o.only != nil && !o.only[w.name] {
			continue
		}
		if w.opcua && o.opcuasim == "" {
			o.opcuasim = filepath.Join(work, "opcuasim")
			fmt.Fprintln(progress, "building cmd/opcuasim")
			if b, err := exec.Command("go", "build", "-o", o.opcuasim, "./cmd/opcuasim").CombinedOutput(); err != nil { //nolint:gosec // our work directory
				return fmt.Errorf("go build ./cmd/opcuasim: %w\n%s", err, b)
			}
		}
		fmt.Fprintf(progress, "%s: %d polls at %s\n", w.title, o.polls, o.interval)
		r, err := measure(o, w, filepath.Join(work, w.name), progress)
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		results = append(results, r)
	}
	printTable(out, o, size, stripped, results)
	for _, r := range results {
		fmt.Fprint(out, r.breakdown)
	}
	return nil
}

func workloadNames() string {
	var n []string
	for _, w := range workloads {
		n = append(n, w.name)
	}
	return strings.Join(n, ",")
}

// binarySizes returns the binary's size and that of a copy stripped with binutils' strip (the same
// sections `go build -ldflags='-s -w'` leaves out); -1 when strip is not installed.
func binarySizes(binary, work string) (size, stripped int64, err error) {
	st, err := os.Stat(binary)
	if err != nil {
		return 0, 0, err
	}
	strip, err := exec.LookPath("strip")
	if err != nil {
		return st.Size(), -1, nil
	}
	dst := filepath.Join(work, "otelcol-iiot.stripped")
	if b, err := exec.Command(strip, "-o", dst, binary).CombinedOutput(); err != nil { //nolint:gosec // binutils' strip on the binary under test
		return 0, 0, fmt.Errorf("strip: %w: %s", err, b)
	}
	sst, err := os.Stat(dst)
	if err != nil {
		return 0, 0, err
	}
	return st.Size(), sst.Size(), os.Remove(dst)
}

type result struct {
	w           workload
	devicePolls int
	cpu         float64 // seconds in the window
	window      time.Duration
	peakRSS     int64 // KiB, whole run
	steadyRSS   int64 // KiB, median in the window
	steadyAnon  int64 // KiB, median anonymous part
	requests    int
	bytes       int
	samples     int // in the requests counted for bytes
	winSamples  int // stamped in the window
	reqPerPoll  float64
	series      int
	labels      float64 // mean labels per series (besides __name__, target_info aside)
	maxLabels   int
	spans       int
	breakdown   string // with -breakdown
}

// measure runs one workload: device servers, sinks, the collector; from the first sample at the sink
// for polls × interval it reads the collector's CPU time and memory, then waits for the window's last
// samples to be delivered.
func measure(o options, w workload, dir string, progress io.Writer) (res result, err error) {
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(filepath.Join(conf, "devices"), 0o750); err != nil {
		return res, err
	}
	files := map[string]string{
		"devices/modbus.yaml": unusedModbus, "devices/dlt645.yaml": unusedDLT645, "devices/opcua.yaml": unusedOPCUA,
		"registry.yaml": w.registry, "overlay.yaml": overlay(w.receivers),
	}
	interval := o.interval.String()

	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	if w.modbusArgs != nil {
		p, ports, err := startModbus(o, w.modbusArgs, dir)
		if err != nil {
			return res, err
		}
		stops = append(stops, func() { p.stop(5 * time.Second) })
		files["devices/modbus.yaml"] = w.modbusYAML(ports, interval)
	}
	if w.opcua {
		p, port, err := startOPCUA(o, dir)
		if err != nil {
			return res, err
		}
		stops = append(stops, func() { p.stop(5 * time.Second) })
		files["devices/opcua.yaml"] = w.opcuaYAML(port, interval)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o600); err != nil {
			return res, err
		}
	}

	sink := newRWSink(o.upMetric, o.requestsMetric)
	sink.detail, sink.align = o.breakdown, o.interval
	if err := sink.start(); err != nil {
		return res, err
	}
	stops = append(stops, sink.close)
	traces := &traceSink{}
	if err := traces.start(); err != nil {
		return res, err
	}
	stops = append(stops, traces.close)

	ports, err := freePorts(4)
	if err != nil {
		return res, err
	}
	var prof *profiler
	if o.profile != "" {
		prof = &profiler{addr: "127.0.0.1:" + strconv.Itoa(ports[3]), dir: o.profile, name: w.name}
		files["overlay.yaml"] = prof.overlay(files["overlay.yaml"])
		if err := os.WriteFile(filepath.Join(conf, "overlay.yaml"), []byte(files["overlay.yaml"]), 0o600); err != nil {
			return res, err
		}
	}
	args := []string{"--config", o.config, "--config", filepath.Join(conf, "overlay.yaml")}
	for _, f := range o.extra {
		args = append(args, "--config", f)
	}
	cmd := exec.Command(o.binary, args...) //nolint:gosec // the binary under test, from the command line
	cmd.Env = append(os.Environ(),
		"OTELCOL_IIOT_CONFIG_DIR="+conf,
		"OTELCOL_IIOT_STORAGE_DIR="+filepath.Join(dir, "storage"),
		"OTELCOL_IIOT_REMOTE_WRITE_URL="+sink.URL(),
		"OTELCOL_IIOT_TRACES_ENDPOINT="+traces.ln.Addr().String(),
		"OTELCOL_IIOT_HEALTH_CHECK_ENDPOINT=127.0.0.1:"+strconv.Itoa(ports[0]),
		"OTELCOL_IIOT_OTLP_LISTEN=127.0.0.1:"+strconv.Itoa(ports[1]),
		"OTELCOL_IIOT_TELEMETRY_PORT="+strconv.Itoa(ports[2]),
		"OTELCOL_IIOT_SITE=footprint",
	)
	for k, v := range o.env {
		cmd.Env = append(cmd.Env, k+"="+v) // later entries win
	}
	logPath := filepath.Join(dir, "collector.log")
	logFile, err := os.Create(logPath) //nolint:gosec // a file in our own work directory
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	col, err := startProcess("collector", cmd)
	if err != nil {
		return res, err
	}
	stops = append(stops, func() { col.stop(15 * time.Second) })
	failed := func(what string) error {
		return fmt.Errorf("%s; collector log %s ends:\n%s", what, logPath, tail(logPath, 20))
	}

	// start-up is not measured: the window opens with the first sample at the sink
	select {
	case <-sink.first:
	case <-col.done:
		return res, failed(fmt.Sprintf("collector exited (%v) before any sample reached the sink", col.err))
	case <-time.After(90 * time.Second):
		return res, failed("no sample reached the sink in 90s")
	}
	t0, _ := sink.firstSample()
	cpu0, err := cpuSeconds(col.pid())
	if err != nil {
		return res, err
	}
	res.w = w
	res.window = time.Duration(o.polls) * o.interval
	t1 := t0.Add(res.window)
	if prof != nil {
		prof.start(res.window)
		defer func() {
			if perr := prof.wait(); perr != nil && err == nil {
				err = perr
			}
		}()
	}
	var rss, anon []int64
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(t1) {
		select {
		case <-col.done:
			return res, failed(fmt.Sprintf("collector exited (%v) during the measurement", col.err))
		case <-tick.C:
		}
		m, err := readMemory(col.pid())
		if err != nil {
			return res, err
		}
		rss, anon = append(rss, m.RSS), append(anon, m.Anon)
	}
	cpu1, err := cpuSeconds(col.pid())
	if err != nil {
		return res, err
	}
	m, err := readMemory(col.pid())
	if err != nil {
		return res, err
	}
	res.cpu, res.peakRSS = cpu1-cpu0, m.HWM
	res.steadyRSS, res.steadyAnon = median(rss), median(anon)

	// the exporter batches (at most flush_timeout late): wait until a device-poll sample from after the
	// window has arrived, so every one of the window's samples is in
	if w.devices > 0 {
		deadline := time.After(30 * time.Second)
		for !sink.upThrough(t1) {
			select {
			case <-col.done:
				return res, failed(fmt.Sprintf("collector exited (%v) while the last samples were due", col.err))
			case <-deadline:
				return res, failed("no device-poll sample from after the window reached the sink within 30s")
			case <-tick.C:
			}
		}
	}
	wc := sink.window(t0, t1)
	res.winSamples, res.devicePolls = wc.samples, wc.polls
	if wc.requestPolls > 0 {
		res.reqPerPoll = wc.requests / wc.requestPolls
	}
	res.requests, res.bytes, res.samples = sink.traffic(t0)
	res.series = sink.seriesCount()
	res.labels, res.maxLabels = sink.labelsPerSeries()
	res.spans = traces.spanCount()
	if o.breakdown {
		var b strings.Builder
		sink.printBreakdown(&b, w.title, t0)
		res.breakdown = b.String()
	}
	if w.devices > 0 && res.devicePolls == 0 {
		return res, failed(fmt.Sprintf("no %s samples in the window: is -up-metric the per-poll health series?", o.upMetric))
	}
	fmt.Fprintf(progress, "  %d device-polls (nominal %d), %.2f s CPU, %d samples in %d requests, %d spans\n",
		res.devicePolls, w.devices*o.polls, res.cpu, res.samples, res.requests, res.spans)
	// a run whose collector logged errors (a refused export, a failing device) measured something else
	if n := countErrors(logPath); n > 0 {
		fmt.Fprintf(progress, "  WARNING: the collector logged %d errors; log %s ends:\n%s\n", n, logPath, tail(logPath, 5))
	}
	return res, nil
}

func startModbus(o options, args []string, dir string) (*process, []int, error) {
	cmd := exec.Command(o.python, append([]string{o.server}, args...)...) //nolint:gosec // interpreter and script from the command line
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	p, err := startProcess("pymodbus server", cmd)
	if err != nil {
		return nil, nil, err
	}
	line, err := readLine(stdout, 30*time.Second)
	if err == nil && !strings.HasPrefix(line, "ready ") {
		err = fmt.Errorf("first line %q", line)
	}
	if err != nil {
		p.stop(5 * time.Second)
		return nil, nil, fmt.Errorf("pymodbus server (%s %s) did not report ready: %w: %s", o.python, o.server, err, stderr.String())
	}
	var ports []int
	for _, f := range strings.Fields(strings.TrimPrefix(line, "ready ")) {
		n, err := strconv.Atoi(f)
		if err != nil {
			p.stop(5 * time.Second)
			return nil, nil, fmt.Errorf("pymodbus server: port %q: %w", f, err)
		}
		ports = append(ports, n)
	}
	return p, ports, nil
}

func startOPCUA(o options, dir string) (*process, int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command(o.opcuasim, "-listen", "127.0.0.1:"+strconv.Itoa(ports[0]), "-bulk", "2") //nolint:gosec // the simulator we built
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	p, err := startProcess("opcuasim", cmd)
	if err != nil {
		return nil, 0, err
	}
	line, err := readLine(stdout, 30*time.Second)
	if err == nil && !strings.Contains(line, "serving") {
		err = fmt.Errorf("first line %q", line)
	}
	if err != nil {
		p.stop(5 * time.Second)
		return nil, 0, fmt.Errorf("opcuasim did not report serving: %w: %s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }() // its "stopping" line must not block it
	return p, ports[0], nil
}

// readLine reads the first line of a child's output, or fails after the timeout.
func readLine(r io.Reader, timeout time.Duration) (string, error) {
	type got struct {
		line string
		err  error
	}
	ch := make(chan got, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- got{strings.TrimSpace(line), err}
	}()
	select {
	case g := <-ch:
		return g.line, g.err
	case <-time.After(timeout):
		return "", fmt.Errorf("no output line within %s", timeout)
	}
}

// freePorts finds loopback ports that are free now (all held open together, so they are distinct).
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path) //nolint:gosec // our own log file
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// countErrors counts the error-level lines of a collector log (console encoding: tab-separated level).
func countErrors(path string) int {
	b, err := os.ReadFile(path) //nolint:gosec // our own log file
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\terror\t")
}

var errNoDevice = errors.New("n/a")

func perDevicePoll(v float64, polls int) (float64, error) {
	if polls == 0 {
		return 0, errNoDevice
	}
	return v / float64(polls), nil
}

func printTable(out io.Writer, o options, size, stripped int64, results []result) {
	mib := func(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
	fmt.Fprintf(out, "Binary %s: %.1f MB", o.binary, float64(size)/1e6)
	if stripped >= 0 {
		fmt.Fprintf(out, ", stripped (strip) %.1f MB", float64(stripped)/1e6)
	}
	fmt.Fprintf(out, ". %d polls at %s per workload, edge default configuration, %s.\n\n", o.polls, o.interval, describeEnv(o.env, o.envFrom))
	fmt.Fprintln(out, "| workload | device-polls | CPU s | CPU s / 1,000 device-polls | CPU % of a core | requests / device-poll | peak RSS MiB | steady RSS MiB (anon) | RW bytes / sample | RW bytes / device-poll | samples / device-poll | RW requests | series | labels / series (max) |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		na := func(v float64, err error, format string) string {
			if err != nil {
				return "–"
			}
			return fmt.Sprintf(format, v)
		}
		bps := 0.0
		if r.samples > 0 {
			bps = float64(r.bytes) / float64(r.samples)
		}
		cpuPer, err1 := perDevicePoll(1000*r.cpu, r.devicePolls)
		spp, err2 := perDevicePoll(float64(r.winSamples), r.devicePolls)
		reqs := "–"
		if r.reqPerPoll > 0 {
			reqs = fmt.Sprintf("%.2f", r.reqPerPoll)
		}
		fmt.Fprintf(out, "| %s | %d | %.2f | %s | %.1f | %s | %s | %s (%s) | %.1f | %s | %s | %d | %d | %.1f (%d) |\n",
			r.w.title, r.devicePolls, r.cpu, na(cpuPer, err1, "%.2f"), 100*r.cpu/r.window.Seconds(), reqs,
			mib(r.peakRSS), mib(r.steadyRSS), mib(r.steadyAnon), bps,
			na(bps*spp, err2, "%.0f"), na(spp, err2, "%.1f"), r.requests, r.series, r.labels, r.maxLabels)
	}
}
