package opcuareceiver

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

// pollNow runs the next scheduled poll: the receiver runs on a manual clock (startBench with
// manualClock), which is moved one interval once the device's loop waits on it; it returns once that
// poll has been emitted.
func (r *opcuaReceiver) pollNow(c *pointCounter, clk *clock.Manual) {
	for clk.Waiters() == 0 {
		runtime.Gosched()
	}
	clk.Advance(r.cfg.Poll.Interval)
	<-c.polls
}

// pointCounter counts the data points of one metric; polls, if set, hears each emitted poll.
type pointCounter struct {
	name  string
	n     atomic.Int64
	polls chan struct{}
}

func (c *pointCounter) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *pointCounter) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	if c.polls != nil {
		defer func() {
			select {
			case c.polls <- struct{}{}:
			default: // nobody waits (shutting down)
			}
		}()
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if m := ms.At(k); m.Name() == c.name {
					c.n.Add(int64(m.Gauge().DataPoints().Len()))
				}
			}
		}
	}
	return nil
}

func bulkConfig(endpoint string, n int) *Config {
	cfg := testConfig(endpoint)
	cfg.Poll.Interval = time.Hour // polls are driven by the benchmark
	cfg.Poll.Timeout = 10 * time.Second
	cfg.Traces.SuccessSampleRatio = 0
	for i := 0; i < n; i++ {
		cfg.Nodes = append(cfg.Nodes, NodeConfig{ID: nsu + "s=Bulk." + pad5(i), Name: "bulk", Attributes: map[string]string{"n": strconv.Itoa(i)}})
	}
	return cfg
}

func startBench(b *testing.B, cfg *Config, next consumer.Metrics, clk *clock.Manual) *opcuaReceiver {
	b.Helper()
	r, err := newReceiver(cfg, receiverSettings())
	require.NoError(b, err)
	if clk != nil {
		r.SetClock(clk)
	}
	r.setMetrics(next)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	return r
}

// BenchmarkPoll10000Nodes polls 10,000 Double nodes of an in-process server, in reads of the server's
// MaxNodesPerRead (32 for the gopcua server: 313 Read requests per poll). CPU is the whole process,
// server included.
func BenchmarkPoll10000Nodes(b *testing.B) {
	const n = 10000
	srv := startSim(b, sim.Config{BulkNodes: n})
	count := &pointCounter{name: "opcua.bulk", polls: make(chan struct{}, 16)}
	clk := clock.NewManual(time.Now())
	r := startBench(b, bulkConfig(srv.Endpoint(), n), count, clk)
	r.pollNow(count, clk) // connect
	require.EqualValues(b, n, count.n.Load(), "the first poll reads every node")
	count.n.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		r.pollNow(count, clk)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	require.EqualValues(b, int64(n*b.N), count.n.Load())
	nodes := float64(n * b.N)
	b.ReportMetric(nodes/elapsed.Seconds(), "nodes/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/nodes, "cpu-ns/node")
}

// BenchmarkSubscriptionChanges: the server changes 1,000 monitored items as fast as it can (b.N rounds
// over all of them); reported are the value changes made per second and the data points per second
// the receiver turned them into (the server coalesces changes of an item within one publishing
// interval, so points ≤ changes).
func BenchmarkSubscriptionChanges(b *testing.B) {
	for _, iv := range []time.Duration{20 * time.Millisecond, 5 * time.Millisecond} {
		b.Run("publishing_interval="+iv.String(), func(b *testing.B) { benchSubscription(b, iv) })
	}
}

func benchSubscription(b *testing.B, publishing time.Duration) {
	const n = 1000
	srv := startSim(b, sim.Config{BulkNodes: n})
	count := &pointCounter{name: "opcua.bulk"}
	cfg := bulkConfig(srv.Endpoint(), n)
	cfg.Mode = ModeSubscribe
	cfg.Poll.Interval = 10 * time.Second // heartbeat
	cfg.Subscription.PublishingInterval = publishing
	cfg.Subscription.LifetimeCount = 1000
	startBench(b, cfg, count, nil)
	require.Eventually(b, func() bool { return count.n.Load() >= n }, 30*time.Second, 10*time.Millisecond, "initial values")
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "Bulk." + pad5(i)
	}
	count.n.Store(0)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := range b.N {
		for _, k := range keys {
			srv.Set(k, float64(i+1)*0.5)
		}
	}
	changes := float64(n * b.N)
	changeTime := time.Since(start)
	// Wait until the last round has arrived: every item ends on its final value.
	time.Sleep(200 * time.Millisecond) //nolint:forbidigo // let the last publishes arrive
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	points := float64(count.n.Load())
	b.ReportMetric(changes/changeTime.Seconds(), "changes/s")
	b.ReportMetric(points/elapsed.Seconds(), "points/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/max(points, 1), "cpu-ns/point")
}

// BenchmarkMonitoredItemMemory measures the heap the receiver keeps per monitored item (its session,
// client and series: the heap released when it shuts down while the server keeps running), and the
// heap of client and server together.
func BenchmarkMonitoredItemMemory(b *testing.B) {
	const n = 5000
	srv := startSim(b, sim.Config{BulkNodes: n})
	var recvBytes, totalBytes float64
	for range b.N {
		m0 := heap()
		count := &pointCounter{name: "opcua.bulk"}
		cfg := bulkConfig(srv.Endpoint(), n)
		cfg.Mode = ModeSubscribe
		cfg.Poll.Interval = 10 * time.Second
		cfg.Subscription.LifetimeCount = 1000
		r, err := newReceiver(cfg, receiverSettings())
		require.NoError(b, err)
		r.setMetrics(count)
		require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
		require.Eventually(b, func() bool { return count.n.Load() >= n }, 60*time.Second, 10*time.Millisecond)
		m1 := heap()
		require.NoError(b, r.Shutdown(context.Background()))
		r = nil
		m2 := heap()
		recvBytes += float64(m1-m2) / n
		totalBytes += float64(m1-m0) / n
	}
	b.ReportMetric(recvBytes/float64(b.N), "receiver-B/item")
	b.ReportMetric(totalBytes/float64(b.N), "client+server-B/item")
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
