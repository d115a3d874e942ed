package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request taken apart: families, their categories, label against sample bytes, the timestamps a
// device-poll carries and what rounding them to the interval would cost.
func TestSinkBreakdown(t *testing.T) {
	s := newRWSink("iiot_device_up", "iiot_device_requests_total")
	s.detail, s.align = true, time.Second
	at := time.Now()
	// device a: readings and health share each poll's time; device b: its reading is stamped 7 ms
	// after its health (two timestamps per poll)
	s.record(at, 100, 0, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series("iiot_device_up", "a", 1000, 2000),
		series("voltage", "a", 1000, 2000),
		series("iiot_device_up", "b", 1003, 2003),
		series("voltage", "b", 1010, 2010),
		series("system_cpu_time_seconds_total", "", 1500),
		series("target_info", "a", 1000),
	}})
	s.record(at.Add(-time.Hour), 50, 0, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("early", "a", 1)}})

	require.Len(t, s.breakdowns, 2)
	b := s.breakdowns[0]
	assert.Equal(t, 4, b.devPolls)
	assert.Equal(t, 6, b.devStamps, "a: 2 stamps for 2 polls, b: 4")
	v := b.families["voltage"]
	require.NotNil(t, v)
	assert.Len(t, v.series, 2)
	assert.Equal(t, 4, v.samples)
	// values 0 and 1 (a zero double is left out of the encoding), timestamps in 2-byte varints
	assert.Equal(t, 2*(1+2)+2*(1+2+1+8), v.sampleBytes)
	assert.Positive(t, v.labelBytes)
	assert.Equal(t, v.labelBytes+v.sampleBytes+4*2+4*2, v.raw, "tags and lengths: 2 per label, 2 per sample")
	assert.Greater(t, v.snappy, v.snappyLabels)
	assert.Positive(t, b.aligned)
	assert.Equal(t, snappyLen(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series("iiot_device_up", "a", 1000, 2000),
		series("voltage", "a", 1000, 2000),
		series("iiot_device_up", "b", 1003, 2003),
		series("voltage", "b", 1010, 2010),
		series("target_info", "a", 1000),
	}}), b.noHost, "the request re-encoded without the host series")

	assert.Equal(t, "host metrics", category("system_cpu_time_seconds_total"))
	assert.Equal(t, "health & quantiles", category("iiot_device_up"))
	assert.Equal(t, "target_info", category("target_info"))
	assert.Equal(t, "readings", category("voltage"))

	var out strings.Builder
	s.printBreakdown(&out, "w", at)
	r := out.String()
	assert.Contains(t, r, "w: 1 requests, 10 samples, 100 bytes sent (10.0 / sample)")
	assert.Contains(t, r, fmt.Sprintf("without the host metrics: %d bytes, %.1f / device-poll (25.0 with them)", b.noHost, float64(b.noHost)/4))
	assert.Contains(t, r, "distinct timestamps per device-poll (readings and health of a device): 1.50")
	assert.Contains(t, r, "| **host metrics** | 1 | 1 |")
	assert.Contains(t, r, "| voltage | 2 | 4 |")
	assert.NotContains(t, r, "early", "a request before the window is left out")

	// without -breakdown nothing is kept
	plain := newRWSink("iiot_device_up", "iiot_device_requests_total")
	plain.record(at, 100, 0, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("voltage", "a", 1)}})
	assert.Empty(t, plain.breakdowns)
}
