// Copyright The OpenTelemetry Authors
// SPDX-License-Identifier: Apache-2.0

package rwtranslate // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/rwtranslate"

// Per-point conversions that do not depend on the series: contrib's (pkg/translator/prometheusremotewrite
// v0.159.0 helper.go getPromExemplars, histograms.go exponentialToNativeHistogram / convertBucketsLayout),
// kept as they are so the values are the same.

import (
	"encoding/hex"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// maxExemplarRunes is OpenMetrics' limit on an exemplar's label characters.
const maxExemplarRunes = 128

const defaultZeroThreshold = 1e-128

var staleNaN = math.Float64frombits(value.StaleNaN)

// millis is contrib's convertTimeStamp: nanoseconds to milliseconds, truncated.
func millis(ts pcommon.Timestamp) int64 {
	return int64(ts) / 1e6
}

func promExemplars(exemplars pmetric.ExemplarSlice) []prompb.Exemplar {
	out := make([]prompb.Exemplar, 0, exemplars.Len())
	for i := 0; i < exemplars.Len(); i++ {
		exemplar := exemplars.At(i)
		exemplarRunes := 0

		var promExemplar prompb.Exemplar
		switch exemplar.ValueType() {
		case pmetric.ExemplarValueTypeInt:
			promExemplar = prompb.Exemplar{Value: float64(exemplar.IntValue()), Timestamp: timestamp.FromTime(exemplar.Timestamp().AsTime())}
		case pmetric.ExemplarValueTypeDouble:
			promExemplar = prompb.Exemplar{Value: exemplar.DoubleValue(), Timestamp: timestamp.FromTime(exemplar.Timestamp().AsTime())}
		}
		if traceID := exemplar.TraceID(); !traceID.IsEmpty() {
			val := hex.EncodeToString(traceID[:])
			exemplarRunes += utf8.RuneCountInString(otlptranslator.ExemplarTraceIDKey) + utf8.RuneCountInString(val)
			promExemplar.Labels = append(promExemplar.Labels, prompb.Label{Name: otlptranslator.ExemplarTraceIDKey, Value: val})
		}
		if spanID := exemplar.SpanID(); !spanID.IsEmpty() {
			val := hex.EncodeToString(spanID[:])
			exemplarRunes += utf8.RuneCountInString(otlptranslator.ExemplarSpanIDKey) + utf8.RuneCountInString(val)
			promExemplar.Labels = append(promExemplar.Labels, prompb.Label{Name: otlptranslator.ExemplarSpanIDKey, Value: val})
		}

		attrs := exemplar.FilteredAttributes()
		if attrs.Len() > 0 {
			fromAttributes := make([]prompb.Label, 0, attrs.Len())
			for key, value := range attrs.All() {
				val := value.AsString()
				exemplarRunes += utf8.RuneCountInString(key) + utf8.RuneCountInString(val)
				fromAttributes = append(fromAttributes, prompb.Label{Name: key, Value: val})
			}
			// Only with the filtered attributes if they do not take the labels over the limit.
			if exemplarRunes <= maxExemplarRunes {
				promExemplar.Labels = append(promExemplar.Labels, fromAttributes...)
			}
		}
		out = append(out, promExemplar)
	}
	return out
}

// mostRecentTimestamp is the newest point of a metric: the time of the resource's target_info.
func mostRecentTimestamp(metric pmetric.Metric) pcommon.Timestamp {
	switch metric.Type() {
	case pmetric.MetricTypeGauge:
		return newest(metric.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		return newest(metric.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		return newest(metric.Histogram().DataPoints())
	case pmetric.MetricTypeExponentialHistogram:
		return newest(metric.ExponentialHistogram().DataPoints())
	case pmetric.MetricTypeSummary:
		return newest(metric.Summary().DataPoints())
	case pmetric.MetricTypeEmpty:
	}
	return 0
}

// newest is generic over the slice type, not an interface of it: no boxing of the slice per metric.
func newest[P interface{ Timestamp() pcommon.Timestamp }, S interface {
	Len() int
	At(int) P
}](points S,
) pcommon.Timestamp {
	var ts pcommon.Timestamp
	for i := 0; i < points.Len(); i++ {
		ts = max(ts, points.At(i).Timestamp())
	}
	return ts
}

// validTemporality tells whether the metric can be sent: sums and histograms must be cumulative.
func validTemporality(metric pmetric.Metric) bool {
	switch metric.Type() {
	case pmetric.MetricTypeGauge, pmetric.MetricTypeSummary:
		return true
	case pmetric.MetricTypeSum:
		return metric.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
	case pmetric.MetricTypeHistogram:
		return metric.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
	case pmetric.MetricTypeExponentialHistogram:
		return metric.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
	case pmetric.MetricTypeEmpty:
	}
	return false
}

// nativeHistogram converts an exponential histogram point to a Prometheus native histogram.
func nativeHistogram(p pmetric.ExponentialHistogramDataPoint) (prompb.Histogram, error) {
	scale := p.Scale()
	if scale < -4 {
		return prompb.Histogram{}, fmt.Errorf("cannot convert exponential to native histogram."+
			" Scale must be >= -4, was %d", scale)
	}
	var scaleDown int32
	if scale > 8 {
		scaleDown = scale - 8
		scale = 8
	}
	pSpans, pDeltas := bucketsLayout(p.Positive(), scaleDown)
	nSpans, nDeltas := bucketsLayout(p.Negative(), scaleDown)

	h := prompb.Histogram{
		// UNKNOWN, as contrib: a NO that Prometheus would detect as a reset makes it panic.
		ResetHint:      prompb.Histogram_UNKNOWN,
		Schema:         scale,
		ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: p.ZeroCount()},
		PositiveSpans:  pSpans,
		PositiveDeltas: pDeltas,
		NegativeSpans:  nSpans,
		NegativeDeltas: nDeltas,
		Timestamp:      millis(p.Timestamp()),
	}
	if p.ZeroThreshold() != 0 {
		h.ZeroThreshold = p.ZeroThreshold()
	} else {
		h.ZeroThreshold = defaultZeroThreshold
	}
	if p.Flags().NoRecordedValue() {
		h.Sum = staleNaN
		h.Count = &prompb.Histogram_CountInt{CountInt: value.StaleNaN}
	} else {
		if p.HasSum() {
			h.Sum = p.Sum()
		}
		h.Count = &prompb.Histogram_CountInt{CountInt: p.Count()}
	}
	return h, nil
}

// bucketsLayout turns OTel's dense exponential buckets into Prometheus' sparse spans and deltas,
// merging 2^scaleDown buckets into one (client_golang's makeBuckets with OTel's index shifted by one).
func bucketsLayout(buckets pmetric.ExponentialHistogramDataPointBuckets, scaleDown int32) ([]prompb.BucketSpan, []int64) {
	bucketCounts := buckets.BucketCounts()
	if bucketCounts.Len() == 0 {
		return nil, nil
	}
	var (
		spans     []prompb.BucketSpan
		deltas    []int64
		count     int64
		prevCount int64
	)
	appendDelta := func(count int64) {
		spans[len(spans)-1].Length++
		deltas = append(deltas, count-prevCount)
		prevCount = count
	}
	// A gap of more than two buckets starts a new span (client_golang's constant); a smaller one is
	// filled with empty buckets.
	skip := func(gap int32) {
		if gap > 2 {
			spans = append(spans, prompb.BucketSpan{Offset: gap})
			return
		}
		for range gap {
			appendDelta(0)
		}
	}
	numBuckets := bucketCounts.Len()
	bucketIdx := buckets.Offset()>>scaleDown + 1
	spans = append(spans, prompb.BucketSpan{Offset: bucketIdx})
	for i := range numBuckets {
		nextBucketIdx := (int32(i)+buckets.Offset())>>scaleDown + 1
		if bucketIdx == nextBucketIdx {
			count += int64(bucketCounts.At(i))
			continue
		}
		if count == 0 {
			count = int64(bucketCounts.At(i))
			continue
		}
		skip(nextBucketIdx - bucketIdx - 1)
		appendDelta(count)
		count = int64(bucketCounts.At(i))
		bucketIdx = nextBucketIdx
	}
	skip((int32(numBuckets)+buckets.Offset()-1)>>scaleDown + 1 - bucketIdx)
	appendDelta(count)
	return spans, deltas
}
