package spanquantilesconnector

import (
	"context"
	"regexp"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/connector/spanquantilesconnector/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

const (
	scopeName      = "github.com/otelcol-iiot/otelcol-iiot/connector/spanquantilesconnector"
	unknownService = "unknown_service"
)

type seriesMeta struct {
	resKey string
	res    pcommon.Map
	attrs  pcommon.Map
}

type spanQuantiles struct {
	set    connector.Settings
	cfg    *Config
	next   consumer.Metrics
	clock  clock.Clock
	tel    *metadata.TelemetryBuilder
	runner *quantile.Runner
	re     *regexp.Regexp
	scale  float64 // seconds (or ms) per nanosecond
	out    *quantile.Output

	mu      sync.Mutex
	eng     *quantile.Engine[seriesMeta]
	builder *quantile.Builder
	key     []byte
	failing bool
}

var _ connector.Traces = (*spanQuantiles)(nil)

func newConnector(set connector.Settings, cfg *Config, next consumer.Metrics, clock clock.Clock) (*spanQuantiles, error) {
	eng, err := quantile.New[seriesMeta](cfg.Settings())
	if err != nil {
		return nil, err
	}
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	c := &spanQuantiles{
		set:     set,
		cfg:     cfg,
		next:    next,
		clock:   clock,
		tel:     tel,
		eng:     eng,
		builder: quantile.NewBuilder(scopeName, set.BuildInfo.Version, cfg.Quantiles),
		scale:   1e-9,
		out: &quantile.Output{
			Name:        cfg.Name,
			Unit:        cfg.Unit,
			Description: "Quantiles of span durations over a " + cfg.Window.String() + " window sliding by " + cfg.Slide.String(),
			Outputs:     cfg.Outputs,
		},
	}
	if cfg.Unit == "ms" {
		c.scale = 1e-6
	}
	if cfg.SpanNameRegex != "" {
		if c.re, err = regexp.Compile(cfg.SpanNameRegex); err != nil {
			return nil, err
		}
	}
	c.runner = quantile.NewRunner(clock, cfg.Slide, c.emit)
	return c, nil
}

func (c *spanQuantiles) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (c *spanQuantiles) Start(context.Context, component.Host) error {
	c.runner.Start()
	return nil
}

func (c *spanQuantiles) Shutdown(ctx context.Context) error {
	err := c.runner.Stop(ctx)
	c.tel.Shutdown()
	return err
}

// ConsumeTraces digests the duration of every (selected) span.
func (c *spanQuantiles) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := c.eng.SlideIndex(now)
	held := c.eng.Len()
	var refused int64
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		svc := unknownService
		if v, ok := res.Get(attrServiceName); ok {
			svc = v.AsString()
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				if c.re != nil && !c.re.MatchString(span.Name()) {
					continue
				}
				start, end := span.StartTimestamp(), span.EndTimestamp()
				if start == 0 || end < start {
					continue
				}
				s := c.series(svc, res, span, now)
				if s == nil {
					refused++
					continue
				}
				c.eng.Add(s, idx, float64(end-start)*c.scale)
			}
		}
	}
	if n := c.eng.Len() - held; n != 0 {
		c.tel.ConnectorSpanquantilesSeries.Add(ctx, int64(n))
	}
	if refused > 0 {
		c.tel.ConnectorSpanquantilesRefusedSpans.Add(ctx, refused)
	}
	return nil
}

// dimension finds a configured dimension on the span, then on its resource.
func dimension(d *Dimension, res, attrs pcommon.Map) (pcommon.Value, bool) {
	if v, ok := attrs.Get(d.Name); ok {
		return v, true
	}
	if v, ok := res.Get(d.Name); ok {
		return v, true
	}
	if d.Default != nil {
		return pcommon.NewValueStr(*d.Default), true
	}
	return pcommon.Value{}, false
}

func (c *spanQuantiles) series(svc string, res pcommon.Map, span ptrace.Span, now time.Time) *quantile.Series[seriesMeta] {
	b := c.key[:0]
	b = quantile.AppendString(b, svc)
	for _, name := range c.cfg.ResourceAttributes {
		if v, ok := res.Get(name); ok {
			b = quantile.AppendValue(append(b, '+'), v)
		} else {
			b = append(b, '-')
		}
	}
	resEnd := len(b)
	b = quantile.AppendString(b, span.Name())
	b = append(b, byte(span.Kind()), byte(span.Status().Code()))
	attrs := span.Attributes()
	for i := range c.cfg.Dimensions {
		if v, ok := dimension(&c.cfg.Dimensions[i], res, attrs); ok {
			b = quantile.AppendValue(append(b, '+'), v)
		} else {
			b = append(b, '-')
		}
	}
	c.key = b
	return c.eng.Get(b, now, func(m *seriesMeta) {
		m.res = pcommon.NewMap()
		m.res.PutStr(attrServiceName, svc)
		for _, name := range c.cfg.ResourceAttributes {
			if v, ok := res.Get(name); ok {
				v.CopyTo(m.res.PutEmpty(name))
			}
		}
		m.resKey = string(b[:resEnd])
		m.attrs = pcommon.NewMap()
		m.attrs.PutStr(attrSpanName, span.Name())
		m.attrs.PutStr(attrSpanKind, kindString(span.Kind()))
		m.attrs.PutStr(attrStatusCode, statusString(span.Status().Code()))
		for i := range c.cfg.Dimensions {
			d := &c.cfg.Dimensions[i]
			if v, ok := dimension(d, res, attrs); ok {
				v.CopyTo(m.attrs.PutEmpty(d.Name))
			}
		}
	})
}

// kindString and statusString spell values as the spanmetrics connector does,
// so dashboards can use either.
func kindString(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "SPAN_KIND_INTERNAL"
	case ptrace.SpanKindServer:
		return "SPAN_KIND_SERVER"
	case ptrace.SpanKindClient:
		return "SPAN_KIND_CLIENT"
	case ptrace.SpanKindProducer:
		return "SPAN_KIND_PRODUCER"
	case ptrace.SpanKindConsumer:
		return "SPAN_KIND_CONSUMER"
	}
	return "SPAN_KIND_UNSPECIFIED"
}

func statusString(s ptrace.StatusCode) string {
	switch s {
	case ptrace.StatusCodeOk:
		return "STATUS_CODE_OK"
	case ptrace.StatusCodeError:
		return "STATUS_CODE_ERROR"
	}
	return "STATUS_CODE_UNSET"
}

// emit runs at every slide boundary.
func (c *spanQuantiles) emit(ctx context.Context, now time.Time) {
	c.mu.Lock()
	before := c.eng.Len()
	after := c.eng.Emit(now, func(s *quantile.Series[seriesMeta], r *quantile.Result) {
		c.builder.Append(s.Meta.resKey, s.Meta.res, s.Meta.attrs, c.out, s.Start, r)
	})
	md := c.builder.Take()
	c.mu.Unlock()
	if after != before {
		c.tel.ConnectorSpanquantilesSeries.Add(context.Background(), int64(after-before))
	}
	if md.DataPointCount() == 0 {
		return
	}
	err := c.next.ConsumeMetrics(ctx, md)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && !c.failing:
		c.failing = true
		c.set.Logger.Warn("Sending span quantiles downstream failed; will retry with the next window", zap.Error(err))
	case err == nil && c.failing:
		c.failing = false
		c.set.Logger.Info("Sending span quantiles downstream works again")
	}
}
