package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func series(name, device string, stamps ...int64) prompb.TimeSeries {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "device_id", Value: device}}}
	for i, t := range stamps {
		ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(i), Timestamp: t})
	}
	return ts
}

// post sends a body to the sink as the exporter does and returns the status code.
func post(t *testing.T, s *rwSink, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL(), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

func encode(t *testing.T, wr *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := wr.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

func startSink(t *testing.T) *rwSink {
	t.Helper()
	s := newRWSink("iiot_device_up", "iiot_device_requests_total")
	require.NoError(t, s.start())
	t.Cleanup(func() {
		s.close()
		http.DefaultClient.CloseIdleConnections()
	})
	return s
}

func TestSinkCounts(t *testing.T) {
	s := startSink(t)
	before := time.Now()
	_, ok := s.firstSample()
	require.False(t, ok)

	// a request without samples (metadata only) does not open the window
	require.Equal(t, http.StatusNoContent, post(t, s, encode(t, &prompb.WriteRequest{})))
	require.False(t, s.started())

	base := time.UnixMilli(1_000_000)
	ms := base.UnixMilli()
	first := encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series("iiot_device_up", "a", ms, ms+1000, ms+2000),
		series("electrical_voltage_volts", "a", ms, ms+1000),
	}})
	require.Equal(t, http.StatusNoContent, post(t, s, first))
	require.True(t, s.started())
	at, ok := s.firstSample()
	require.True(t, ok)
	assert.False(t, at.Before(before))

	// the same series again, plus a new one and a stale marker (a sample like any other on the wire)
	second := encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series("iiot_device_up", "a", ms+3000),
		series("iiot_device_up", "b", ms+3000),
		series("electrical_voltage_volts", "a", ms+3000),
	}})
	require.Equal(t, http.StatusNoContent, post(t, s, second))

	requests, n, samples := s.traffic(time.Time{})
	assert.Equal(t, 3, requests)
	assert.Equal(t, len(encode(t, &prompb.WriteRequest{}))+len(first)+len(second), n, "compressed body bytes")
	assert.Equal(t, 8, samples)
	assert.Equal(t, 3, s.seriesCount())
	mean, most := s.labelsPerSeries()
	assert.InDelta(t, 1.0, mean, 1e-9) // device_id only
	assert.Equal(t, 1, most)

	// only the requests from the first sample on
	requests, n, samples = s.traffic(at)
	assert.Equal(t, 2, requests)
	assert.Equal(t, len(first)+len(second), n)
	assert.Equal(t, 8, samples)

	// the window is by sample timestamp, half-open
	c := s.window(base.Add(time.Second), base.Add(3*time.Second))
	assert.Equal(t, 3, c.samples) // up a@+1s, up a@+2s, voltage a@+1s
	assert.Equal(t, 2, c.polls)
	c = s.window(base, base.Add(time.Hour))
	assert.Equal(t, 8, c.samples)
	assert.Equal(t, 5, c.polls)

	assert.True(t, s.upThrough(base.Add(3*time.Second)))
	assert.False(t, s.upThrough(base.Add(3*time.Second+time.Millisecond)))
}

func TestSinkRefusesGarbage(t *testing.T) {
	s := startSink(t)
	// not snappy
	assert.Equal(t, http.StatusBadRequest, post(t, s, []byte("definitely not snappy \xff\xff\xff")))
	// snappy, but not a WriteRequest (a truncated one)
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("x", "a", 1, 2)}}).Marshal()
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, post(t, s, snappy.Encode(nil, raw[:len(raw)-3])))

	requests, n, samples := s.traffic(time.Time{})
	assert.Zero(t, requests)
	assert.Zero(t, n)
	assert.Zero(t, samples)
	assert.Zero(t, s.seriesCount())
	mean, most := s.labelsPerSeries()
	assert.Zero(t, mean)
	assert.Zero(t, most)
	assert.False(t, s.started())
}

func TestTraceSinkCounts(t *testing.T) {
	ts := &traceSink{}
	require.NoError(t, ts.start())
	defer ts.close()
	conn, err := grpc.NewClient(ts.ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()

	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for range 3 {
		ss.Spans().AppendEmpty().SetName("modbus.poll")
	}
	// gzip, as the otlp exporter sends by default (the name, not the package: the sink must register it)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td), grpc.UseCompressor("gzip"))
	require.NoError(t, err)
	assert.Equal(t, 3, ts.spanCount())
}

func TestProcReadings(t *testing.T) {
	pid := os.Getpid()
	cpu, err := cpuSeconds(pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cpu, 0.0)
	m, err := readMemory(pid)
	require.NoError(t, err)
	assert.Positive(t, m.RSS)
	assert.GreaterOrEqual(t, m.HWM, m.RSS)
	assert.LessOrEqual(t, m.Anon+m.File, m.RSS)

	_, err = cpuSeconds(-1)
	assert.Error(t, err)
	// fields are counted after the name's last ')': a name may hold spaces and parentheses
	stat := "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 1 0 100 0 0\n"
	got, err := parseStat([]byte(stat))
	require.NoError(t, err)
	assert.InDelta(t, 3.75, got, 1e-9)
	_, err = parseStat([]byte("42 (x) S 1 2"))
	assert.Error(t, err)
	assert.Equal(t, int64(3), median([]int64{5, 1, 3}))
	assert.Zero(t, median(nil))
}

func counter(device string, points ...[2]float64) prompb.TimeSeries {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "iiot_device_requests_total"}, {Name: "device_id", Value: device}}}
	for _, p := range points {
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: int64(p[0]), Value: p[1]})
	}
	return ts
}

func TestSinkRequestsPerPoll(t *testing.T) {
	s := startSink(t)
	// device a: 5 requests per poll; device b: 1, and its counter restarts in the window (left out);
	// device c: one sample in the window only (no increment to measure). Samples arrive out of order.
	require.Equal(t, http.StatusNoContent, post(t, s, encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		counter("a", [2]float64{2000, 15}, [2]float64{1000, 10}, [2]float64{3000, 20}),
		counter("b", [2]float64{1000, 100}, [2]float64{2000, 1}),
		counter("c", [2]float64{1000, 7}),
	}})))
	require.Equal(t, http.StatusNoContent, post(t, s, encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		counter("a", [2]float64{4000, 25}, [2]float64{9000, 50}), // 9000 is after the window
	}})))
	c := s.window(time.UnixMilli(1000), time.UnixMilli(5000))
	assert.InDelta(t, 15.0, c.requests, 1e-9) // 25 - 10
	assert.InDelta(t, 3.0, c.requestPolls, 1e-9)
	assert.Zero(t, c.polls, "no up samples")
	assert.Equal(t, 7, c.samples) // a: 4, b: 2, c: 1
}

func upSeries(device string, stamps ...int64) prompb.TimeSeries {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "iiot_device_up"}, {Name: "device_id", Value: device}}}
	for _, at := range stamps {
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at, Value: 1})
	}
	return ts
}

// The receivers send the requests counter once a health interval (and when a poll's count changes),
// iiot_device_up at every poll: the polls between the counter's first and last sample are the device's
// up samples, not the counter's.
func TestSinkRequestsPerPollSparseCounter(t *testing.T) {
	s := startSink(t)
	var ups []int64
	for at := int64(0); at <= 130_000; at += 1000 {
		ups = append(ups, at)
	}
	// 5 requests a poll, one poll with a retry (6) at 70 s: the counter at 0, 60, 70, 71, 120 s
	require.Equal(t, http.StatusNoContent, post(t, s, encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		upSeries("a", ups...),
		counter("a", [2]float64{0, 5}, [2]float64{60_000, 305}, [2]float64{70_000, 356}, [2]float64{71_000, 361}, [2]float64{120_000, 606}),
		// another device's polls do not count for a
		upSeries("b", 500, 1500, 2500),
	}})))
	c := s.window(time.UnixMilli(0), time.UnixMilli(130_000))
	assert.InDelta(t, 601.0, c.requests, 1e-9) // 606 - 5
	assert.InDelta(t, 120.0, c.requestPolls, 1e-9, "the polls after the first sample up to the last")
	assert.InDelta(t, 601.0/120, c.requests/c.requestPolls, 1e-9)

	// A window of 60 polls from 5 s on holds one counter sample (60 s): the one before it counts too.
	c = s.window(time.UnixMilli(5000), time.UnixMilli(65_000))
	assert.InDelta(t, 300.0, c.requests, 1e-9) // 305 - 5
	assert.InDelta(t, 60.0, c.requestPolls, 1e-9)
	assert.Equal(t, 60, c.polls)
}

// target_info (one series per resource) is not a reading's series: left out of labels per series.
func TestSinkLabelsPerSeries(t *testing.T) {
	s := newRWSink("iiot_device_up", "iiot_device_requests_total")
	s.record(time.Now(), 10, 0, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "a"}, {Name: "job", Value: "j"}}, Samples: []prompb.Sample{{Timestamp: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "b"}, {Name: "job", Value: "j"}, {Name: "instance", Value: "i"}, {Name: "phase", Value: "L1"}}, Samples: []prompb.Sample{{Timestamp: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "target_info"}, {Name: "job", Value: "j"}, {Name: "instance", Value: "i"}, {Name: "device_address", Value: "x"}, {Name: "site", Value: "s"}, {Name: "more", Value: "m"}}, Samples: []prompb.Sample{{Timestamp: 1}}},
	}})
	mean, most := s.labelsPerSeries()
	assert.InDelta(t, 2.0, mean, 1e-9)
	assert.Equal(t, 3, most)
	assert.Equal(t, 3, s.seriesCount())
}
