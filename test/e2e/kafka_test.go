//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestGatewayKafka runs the gateway with its Kafka overlay (distributions/otelcol-iiot-gateway/kafka.yaml)
// against franz-go's kfake: an in-process Kafka broker that speaks the real wire protocol (no Kafka broker
// is packaged in Debian). Metrics and poll spans reach their topics as OTLP protobuf; then, while the
// broker is down, the gateway acknowledges a batch and is killed with SIGKILL: after the broker and the
// gateway come back, that batch reaches Kafka from the gateway's disk queue.
func TestGatewayKafka(t *testing.T) {
	const metricsTopic, tracesTopic = "site_metrics", "site_spans"
	port := freePort(t)
	brokerDir := t.TempDir() // the broker keeps its log on disk, so a restarted broker still has the first batch
	startBroker := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(brokerDir),
			kfake.SeedTopics(1, metricsTopic, tracesTopic))
		require.NoError(t, err)
		return c
	}
	broker := startBroker()
	t.Cleanup(func() { broker.Close() })
	brokerAddr := "127.0.0.1:" + strconv.Itoa(port)

	prom := startPrometheus(t)
	sink := startTraceSink(t)
	gw := startGateway(t, map[string]string{
		"OTELCOL_IIOT_REMOTE_WRITE_URL":    prom.RemoteWriteURL(),
		"OTELCOL_IIOT_TRACES_BACKENDS":     "127.0.0.1",
		"OTELCOL_IIOT_TRACES_PORT":         strconv.Itoa(sink.port),
		"OTELCOL_IIOT_KAFKA_BROKERS":       "[" + brokerAddr + "]",
		"OTELCOL_IIOT_KAFKA_METRICS_TOPIC": metricsTopic,
		"OTELCOL_IIOT_KAFKA_TRACES_TOPIC":  tracesTopic,
	}, "kafka.yaml")

	conn, err := grpc.NewClient(gw.otlp, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	send := func(batch int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(kafkaMetrics(batch)))
		require.NoError(t, err, "batch %d: the gateway acknowledges (it is on disk)", batch)
		_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(kafkaSpan(batch)))
		require.NoError(t, err, "batch %d: spans", batch)
	}

	// ---- metrics and spans reach their topics ------------------------------------------------------
	send(1)
	got := consumeKafka(t, brokerAddr, metricsTopic, tracesTopic, 1, 60*time.Second)
	assert.Equal(t, kafkaPointsOf(1), got.points[1], "the points of batch 1, each once, with device and tenant")
	assert.Equal(t, 1, got.spans[1], "the poll span of batch 1")

	// ---- broker down: acknowledged data survives a SIGKILL of the gateway ------------------------
	broker.Close()
	send(2)
	// Acknowledged means on disk: the exporter is batching batch 2 or retrying it against the missing
	// broker, and the kill comes right after the acknowledgement.
	gw.kill(t)
	broker = startBroker()
	gw.Start(t)
	got = consumeKafka(t, brokerAddr, metricsTopic, tracesTopic, 2, 90*time.Second)
	assert.Equal(t, kafkaPointsOf(2), got.points[2], "batch 2 after the broker outage and a SIGKILL of the gateway")
	assert.Equal(t, 1, got.spans[2])
	assert.Equal(t, kafkaPointsOf(1), got.points[1], "batch 1 is still there once, not sent again")
}

const kafkaDevices = 3

// kafkaMetrics is batch n: one gauge point per device, valued n*100+device.
func kafkaMetrics(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for d := range kafkaDevices {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("device.id", fmt.Sprintf("kafka-meter-%d", d))
		rm.Resource().Attributes().PutStr("tenant.id", "grid-operator")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("electrical.voltage")
		m.SetUnit("V")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetDoubleValue(float64(n*100 + d))
		dp.Attributes().PutInt("batch", int64(n))
	}
	return md
}

func kafkaSpan(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("device.id", "kafka-meter-0")
	rs.Resource().Attributes().PutStr("tenant.id", "grid-operator")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("modbus.poll")
	s.SetTraceID(pcommon.TraceID{byte(n), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	s.SetSpanID(pcommon.SpanID{byte(n), 1, 2, 3, 4, 5, 6, 7})
	now := time.Now()
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	s.Attributes().PutInt("batch", int64(n))
	return td
}

// kafkaPointsOf is what batch n must look like in Kafka: "device tenant value" → count.
func kafkaPointsOf(n int) map[string]int {
	want := map[string]int{}
	for d := range kafkaDevices {
		want[fmt.Sprintf("kafka-meter-%d grid-operator %d", d, n*100+d)] = 1
	}
	return want
}

type kafkaContent struct {
	points map[int]map[string]int // batch → "device tenant value" → count
	spans  map[int]int            // batch → poll spans
}

// consumeKafka reads both topics from the start until batch `until` is complete (or wait ends) and
// returns everything it found.
func consumeKafka(t *testing.T, broker, metricsTopic, tracesTopic string, until int, wait time.Duration) kafkaContent {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(metricsTopic, tracesTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	got := kafkaContent{points: map[int]map[string]int{}, spans: map[int]int{}}
	complete := func() bool {
		return len(got.points[until]) == kafkaDevices && got.spans[until] > 0
	}
	deadline := time.Now().Add(wait)
	for !complete() && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case metricsTopic:
				req := pmetricotlp.NewExportRequest()
				require.NoError(t, req.UnmarshalProto(r.Value), "a metrics record is OTLP protobuf")
				rms := req.Metrics().ResourceMetrics()
				for i := range rms.Len() {
					rm := rms.At(i)
					dev, _ := rm.Resource().Attributes().Get("device.id")
					tenant, _ := rm.Resource().Attributes().Get("tenant.id")
					eachPoint(rm, func(dp pmetric.NumberDataPoint) {
						b, _ := dp.Attributes().Get("batch")
						n := int(b.Int())
						if got.points[n] == nil {
							got.points[n] = map[string]int{}
						}
						got.points[n][fmt.Sprintf("%s %s %g", dev.Str(), tenant.Str(), dp.DoubleValue())]++
					})
				}
			case tracesTopic:
				req := ptraceotlp.NewExportRequest()
				require.NoError(t, req.UnmarshalProto(r.Value), "a traces record is OTLP protobuf")
				rss := req.Traces().ResourceSpans()
				for i := range rss.Len() {
					sss := rss.At(i).ScopeSpans()
					for j := range sss.Len() {
						spans := sss.At(j).Spans()
						for k := range spans.Len() {
							if b, ok := spans.At(k).Attributes().Get("batch"); ok {
								got.spans[int(b.Int())]++
							}
						}
					}
				}
			}
		})
	}
	require.True(t, complete(), "batch %d did not reach Kafka within %s; found %v", until, wait, got)
	return got
}

// eachPoint calls fn for every gauge point of rm.
func eachPoint(rm pmetric.ResourceMetrics, fn func(pmetric.NumberDataPoint)) {
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		ms := sms.At(i).Metrics()
		for j := range ms.Len() {
			if ms.At(j).Type() != pmetric.MetricTypeGauge {
				continue
			}
			dps := ms.At(j).Gauge().DataPoints()
			for k := range dps.Len() {
				fn(dps.At(k))
			}
		}
	}
}
