package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	prw "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	prometheustranslator "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheus"
	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/featuregate"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/rwtranslate"
)

// The contrib exporter's feature gates that change what a remote-write 1.0 sender does. They live in
// its internal package, so they are read from the global registry by id.
const (
	gateMultipleWorkers = "exporter.prometheusremotewritexporter.EnableMultipleWorkers"
	gateRetryOn429      = "exporter.prometheusremotewritexporter.RetryOn429"
	gateSendingRW2      = "exporter.prometheusremotewritexporter.enableSendingRW2"
)

func gateEnabled(id string) bool {
	on := false
	featuregate.GlobalRegistry().VisitAll(func(g *featuregate.Gate) {
		if g.ID() == id {
			on = g.IsEnabled()
		}
	})
	return on
}

// contribOnly tells why the contrib exporter has to send for cfg; "" when rwSender can.
func contribOnly(cfg *prw.Config) string {
	if gateEnabled(gateSendingRW2) && cfg.RemoteWriteProtoMsg == remoteapi.WriteV2MessageType {
		return "protobuf_message " + string(remoteapi.WriteV2MessageType) + " (remote-write 2.0)"
	}
	return ""
}

// translateFunc turns metrics into remote-write series. A partial error still returns what was
// translated (the contrib translator's contract).
type translateFunc func(pmetric.Metrics) ([]prompb.TimeSeries, error)

// translationSettings are the translator settings contrib's exporter builds from the same config.
func translationSettings(cfg *prw.Config) (prwt.Settings, error) {
	//nolint:staticcheck // deprecated upstream, but contrib v0.159 sanitizes external labels with it: same labels
	namer := otlptranslator.LabelNamer{UnderscoreLabelSanitization: !prometheustranslator.DropSanitizationGate.IsEnabled()}
	external := make(map[string]string, len(cfg.ExternalLabels))
	for k, v := range cfg.ExternalLabels {
		if k == "" || v == "" {
			return prwt.Settings{}, errors.New("prometheus remote write: external labels configuration contains an empty key or value")
		}
		name, err := namer.Build(k)
		if err != nil {
			return prwt.Settings{}, err
		}
		external[name] = v
	}
	return prwt.Settings{
		Namespace:                       cfg.Namespace,
		ExternalLabels:                  external,
		DisableTargetInfo:               !cfg.TargetInfo.Enabled,
		DisableScopeInfo:                cfg.DisableScopeInfo,
		AddMetricSuffixes:               cfg.AddMetricSuffixes, //nolint:staticcheck // still read by contrib v0.159 when translation_strategy is unset
		TranslationStrategy:             string(cfg.TranslationStrategy),
		SendMetadata:                    cfg.SendMetadata,
		ConvertExplicitHistogramsToNHCB: cfg.ConvertExplicitHistogramsToNHCB,
		KeepClassicHistograms:           cfg.KeepClassicHistograms,
	}, nil
}

// cachedTranslate is rwtranslate, which keeps the labels of the series it has seen (the same series
// come back every poll) and gives contrib's series; contrib's translator for the settings it refuses.
// promotes tells whether the translation adds the promoted resource attributes to every point's
// labels itself (rwtranslate does); if not, the caller has to copy them onto the points first.
func cachedTranslate(logger *zap.Logger, settings prwt.Settings, promoted []string) (translate translateFunc, promotes bool) {
	t, err := rwtranslate.New(settings, promoted...)
	if err != nil {
		logger.Info("Remote-write translation by the contrib translator (no label cache)", zap.String("reason", err.Error()))
		return contribTranslate(settings), false
	}
	return t.Translate, true
}

// contribTranslate is the contrib translator behind translateFunc.
func contribTranslate(settings prwt.Settings) translateFunc {
	return func(md pmetric.Metrics) ([]prompb.TimeSeries, error) {
		m, err := prwt.FromMetrics(md, settings)
		out := make([]prompb.TimeSeries, 0, len(m))
		for _, ts := range m {
			out = append(out, *ts)
		}
		return out, err
	}
}

// rwSender sends remote-write 1.0 requests the way contrib's exporter does (same config, headers,
// batching and error classification) with the translation outside its push: the series of a
// request can then be post-processed — one target_info sample per resource, a stable order that
// snappy compresses better — and the translator can be swapped for a caching one. It runs behind
// our sending queue, so it has no queue, WAL or retries of its own.
type rwSender struct {
	logger       *zap.Logger
	telemetry    component.TelemetrySettings
	clientCfg    confighttp.ClientConfig
	endpoint     string
	userAgent    string
	parallelism  int
	maxBatch     int
	retryOn429   bool
	metadataKeys []string
	targetInfo   string // name of the target_info series
	infoSent     targetInfoLog

	translate translateFunc
	promotes  bool                                                    // translate adds the promoted resource attributes (newRWSender's promoted)
	metadata  func(pmetric.Metrics) ([]*prompb.MetricMetadata, error) // nil without send_metadata

	client    *http.Client
	wg        sync.WaitGroup
	closed    chan struct{}
	closeOnce sync.Once
}

var _ exporter.Metrics = (*rwSender)(nil)

// newRWSender builds the sender; promoted are the resource attributes every point is to be labelled
// with (see promoting), which its translator may add itself (then promotes is set).
func newRWSender(set exporter.Settings, cfg *prw.Config, promoted []string) (*rwSender, error) {
	settings, err := translationSettings(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := url.ParseRequestURI(cfg.HTTP.Endpoint); err != nil {
		return nil, errors.New("invalid endpoint")
	}
	parallelism := 5
	if !gateEnabled(gateMultipleWorkers) {
		parallelism = cfg.RemoteWriteQueue.NumConsumers
	}
	if cfg.MaxBatchRequestParallelism != nil {
		parallelism = *cfg.MaxBatchRequestParallelism
	}
	targetInfo := otlptranslator.TargetInfoMetricName
	if settings.Namespace != "" {
		targetInfo = settings.Namespace + "_" + targetInfo
	}
	s := &rwSender{
		logger:       set.Logger,
		telemetry:    set.TelemetrySettings,
		clientCfg:    cfg.HTTP,
		endpoint:     cfg.HTTP.Endpoint,
		userAgent:    fmt.Sprintf("%s/%s", strings.ReplaceAll(strings.ToLower(set.BuildInfo.Description), " ", "-"), set.BuildInfo.Version),
		parallelism:  max(parallelism, 1),
		maxBatch:     cfg.MaxBatchSizeBytes,
		retryOn429:   gateEnabled(gateRetryOn429),
		metadataKeys: cfg.IncludeMetadataKeys,
		targetInfo:   targetInfo,
		infoSent:     targetInfoLog{every: targetInfoEvery.Milliseconds(), last: map[string]int64{}},
		closed:       make(chan struct{}),
	}
	s.translate, s.promotes = cachedTranslate(set.Logger, settings, promoted)
	if cfg.SendMetadata {
		s.metadata = func(md pmetric.Metrics) ([]*prompb.MetricMetadata, error) {
			return prwt.OtelMetricsToMetadata(md, settings)
		}
	}
	return s, nil
}

func (s *rwSender) Start(ctx context.Context, host component.Host) error {
	c, err := s.clientCfg.ToClient(ctx, host.GetExtensions(), s.telemetry)
	if err != nil {
		return err
	}
	s.client = c
	return nil
}

// Shutdown refuses further pushes and waits for the running ones.
func (s *rwSender) Shutdown(context.Context) error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.wg.Wait()
	return nil
}

func (*rwSender) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (s *rwSender) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	s.wg.Add(1)
	defer s.wg.Done()
	select {
	case <-s.closed:
		return errors.New("shutdown has been called")
	default:
	}
	if s.client == nil {
		return errors.New("remote-write sender not started")
	}
	tss, err := s.translate(md)
	if err != nil {
		s.logger.Debug("failed to translate metrics, exporting remaining metrics", zap.Error(err), zap.Int("translated", len(tss)))
	}
	var meta []*prompb.MetricMetadata
	if s.metadata != nil {
		if meta, err = s.metadata(md); err != nil {
			s.logger.Debug("failed to translate metrics into metadata, exporting remaining metadata", zap.Error(err), zap.Int("translated", len(meta)))
		}
	}
	if len(tss) == 0 {
		return nil // as contrib: no series, nothing sent (metadata only travels with series)
	}
	tss = newestTargetInfo(tss, s.targetInfo)
	tss, infos := s.infoSent.drop(tss, s.targetInfo)
	orderSeries(tss)
	if err := s.export(ctx, batchRequests(tss, meta, s.maxBatch)); err != nil {
		return err
	}
	s.infoSent.remember(infos)
	return nil
}

// targetInfoEvery is the least time, in sample time, between two target_info samples of one label set
// the backend is sent. Queries join target_info within Prometheus' 5-minute lookback, so one sample a
// minute keeps every join working; each one costs a resource's whole label set (about 5 % of a small
// site's bytes when it went in every request).
const targetInfoEvery = time.Minute

// targetInfoLog remembers, per label set of target_info, the newest sample time the backend
// acknowledged. Sample time, not wall time: a backlog replayed after an outage gets a target_info
// sample every minute of its own time, so joins over past data work too.
type targetInfoLog struct {
	every  int64 // ms
	mu     sync.Mutex
	last   map[string]int64 // label set -> newest target_info timestamp delivered (ms)
	newest int64            // the newest of them, for pruning
	pruned int64            // newest at the last pruning
}

// infoSample is a target_info sample a request carries, remembered once the request is delivered.
type infoSample struct {
	key string
	ts  int64
}

// drop removes the target_info series (one sample each, after newestTargetInfo) whose label set
// was delivered less than `every` earlier in sample time, and returns what the request still carries.
// A sample older than the one delivered (a backlog sent after fresh data) is always kept.
func (l *targetInfoLog) drop(tss []prompb.TimeSeries, name string) ([]prompb.TimeSeries, []infoSample) {
	var infos []infoSample
	var key []byte
	out := tss[:0]
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ts := range tss {
		if len(ts.Samples) != 1 || metricName(ts.Labels) != name {
			out = append(out, ts)
			continue
		}
		key = labelsKey(key[:0], ts.Labels)
		at := ts.Samples[0].Timestamp
		if last, ok := l.last[string(key)]; ok && at >= last && at-last < l.every {
			continue
		}
		infos = append(infos, infoSample{key: string(key), ts: at})
		out = append(out, ts)
	}
	return out, infos
}

// remember notes the target_info samples of a delivered request, and forgets label sets not
// delivered for ten periods (a removed device; forgetting one only means it is sent again).
func (l *targetInfoLog) remember(infos []infoSample) {
	if len(infos) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range infos {
		if last, ok := l.last[in.key]; !ok || in.ts > last {
			l.last[in.key] = in.ts
		}
		l.newest = max(l.newest, in.ts)
	}
	if l.newest-l.pruned >= 10*l.every {
		for k, at := range l.last {
			if at < l.newest-10*l.every {
				delete(l.last, k)
			}
		}
		l.pruned = l.newest
	}
}

// newestTargetInfo keeps, for each label set of the target_info series, only the newest sample: a
// request holding ten polls of a device carried ten identical target_info samples, 1 each, which
// tell the backend nothing the newest does not (it keeps the series fresh for 5 minutes).
func newestTargetInfo(tss []prompb.TimeSeries, name string) []prompb.TimeSeries {
	seen := map[string]int{} // label set -> index in out
	out := tss[:0]
	var key []byte
	for _, ts := range tss {
		if metricName(ts.Labels) != name || len(ts.Samples) == 0 {
			out = append(out, ts)
			continue
		}
		newest := ts.Samples[0]
		for _, smp := range ts.Samples[1:] {
			if smp.Timestamp > newest.Timestamp {
				newest = smp
			}
		}
		key = labelsKey(key[:0], ts.Labels)
		if i, ok := seen[string(key)]; ok {
			if newest.Timestamp > out[i].Samples[0].Timestamp {
				out[i].Samples[0] = newest
			}
			continue
		}
		seen[string(key)] = len(out)
		ts.Samples = []prompb.Sample{newest} // not in place: a caching translator may own the array
		out = append(out, ts)
	}
	return out
}

func metricName(labels []prompb.Label) string {
	for _, l := range labels {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}

// labelsKey appends an unambiguous encoding of a label set (names and values end with 0xff, a
// byte UTF-8 never holds) in name order.
func labelsKey(b []byte, labels []prompb.Label) []byte {
	sorted := slices.IsSortedFunc(labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	if !sorted {
		labels = slices.Clone(labels)
		slices.SortFunc(labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, l := range labels {
		b = append(append(b, l.Name...), 0xff)
		b = append(append(b, l.Value...), 0xff)
	}
	return b
}

// orderSeries puts the series in a deterministic order (contrib sends them in map order) and each
// series' samples in time order (Prometheus refuses a sample older than one before it). By metric
// name, then the other labels: a metric's series for every device follow each other, so snappy
// finds the repeated name and label names within its window (see BenchmarkSeriesOrderBytes).
func orderSeries(tss []prompb.TimeSeries) {
	for i := range tss {
		smp := tss[i].Samples
		if !slices.IsSortedFunc(smp, func(a, b prompb.Sample) int { return cmp.Compare(a.Timestamp, b.Timestamp) }) {
			slices.SortStableFunc(smp, func(a, b prompb.Sample) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
		}
	}
	slices.SortFunc(tss, compareSeries)
}

func compareSeries(a, b prompb.TimeSeries) int {
	if c := strings.Compare(metricName(a.Labels), metricName(b.Labels)); c != 0 {
		return c
	}
	return slices.CompareFunc(a.Labels, b.Labels, func(x, y prompb.Label) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return strings.Compare(x.Value, y.Value)
	})
}

// batchRequests splits series, then metadata, into requests whose encoding stays within maxBytes
// (contrib counts only the series' own sizes and can exceed it by their framing). A single series
// larger than maxBytes goes alone.
func batchRequests(tss []prompb.TimeSeries, meta []*prompb.MetricMetadata, maxBytes int) []*prompb.WriteRequest {
	var reqs []*prompb.WriteRequest
	start, size := 0, 0
	for i := range tss {
		n := framed(tss[i].Size())
		if size+n > maxBytes && i > start {
			reqs = append(reqs, &prompb.WriteRequest{Timeseries: tss[start:i:i]})
			start, size = i, 0
		}
		size += n
	}
	if start < len(tss) {
		reqs = append(reqs, &prompb.WriteRequest{Timeseries: tss[start:]})
	}
	var batch []prompb.MetricMetadata
	size = 0
	for _, m := range meta {
		n := framed(m.Size())
		if size+n > maxBytes && len(batch) > 0 {
			reqs = append(reqs, &prompb.WriteRequest{Metadata: batch})
			batch, size = nil, 0
		}
		batch = append(batch, *m)
		size += n
	}
	if len(batch) > 0 {
		reqs = append(reqs, &prompb.WriteRequest{Metadata: batch})
	}
	return reqs
}

// framed is the size of an embedded message of n bytes in its parent: tag, length, body.
func framed(n int) int {
	l := 1
	for v := uint64(n); v >= 0x80; v >>= 7 {
		l++
	}
	return 1 + l + n
}

// snappyBlock is golang/snappy's block size: Encode compresses its input in blocks of this many
// bytes, each on its own (a fresh hash table per block), after the varint of the whole length.
const snappyBlock = 65536

// encodeBuffers are one worker's buffers, reused across requests. The protobuf encoding is made one
// snappy block at a time and compressed as the block fills, so that a request is never held whole
// uncompressed: a 10 s flush of 50 devices is ~1 MiB of protobuf (and Encode's output buffer as
// large again) but ~100 KiB compressed. The body is byte for byte snappy.Encode of the whole
// encoding, since Encode compresses each block on its own.
type encodeBuffers struct {
	block  []byte // the protobuf bytes of the block being filled (cap snappyBlock)
	item   []byte // one series or metadata record, framed as in the request
	packed []byte // one compressed block
	out    []byte // the body
	one    prompb.WriteRequest
}

var encodePool = sync.Pool{New: func() any { return &encodeBuffers{} }}

func (b *encodeBuffers) encode(req *prompb.WriteRequest) ([]byte, error) {
	if len(req.XXX_unrecognized) > 0 {
		// only series and metadata are written (batchRequests never sets anything else)
		return nil, errors.New("remote-write request with unknown fields")
	}
	if cap(b.block) < snappyBlock {
		b.block = make([]byte, 0, snappyBlock)
		b.packed = make([]byte, snappy.MaxEncodedLen(snappyBlock))
	}
	size := req.Size()
	if cap(b.out) < size/4 {
		// Series compress 5-6 times: one allocation instead of append's growth by a quarter, which
		// allocates five times the final size on the way.
		b.out = make([]byte, 0, size/4)
	}
	b.block, b.out = b.block[:0], binary.AppendUvarint(b.out[:0], uint64(size))
	// field order of the message: series (1), then metadata (3)
	for i := range req.Timeseries {
		b.one = prompb.WriteRequest{Timeseries: req.Timeseries[i : i+1]}
		if err := b.add(); err != nil {
			return nil, err
		}
	}
	for i := range req.Metadata {
		b.one = prompb.WriteRequest{Metadata: req.Metadata[i : i+1]}
		if err := b.add(); err != nil {
			return nil, err
		}
	}
	b.one = prompb.WriteRequest{}
	b.compress()
	if cap(b.item) > snappyBlock {
		b.item = nil // a rare huge series: not kept for every later request
	}
	return b.out, nil
}

// add appends the record in b.one to the block, compressing each block as it fills.
func (b *encodeBuffers) add() error {
	n := b.one.Size()
	if cap(b.item) < n {
		b.item = make([]byte, n)
	}
	n, err := b.one.MarshalToSizedBuffer(b.item[:n])
	if err != nil {
		return err
	}
	for rest := b.item[:n]; len(rest) > 0; {
		k := copy(b.block[len(b.block):snappyBlock], rest)
		b.block, rest = b.block[:len(b.block)+k], rest[k:]
		if len(b.block) == snappyBlock {
			b.compress()
		}
	}
	return nil
}

// compress appends the block, compressed, to the body and empties it.
func (b *encodeBuffers) compress() {
	if len(b.block) == 0 {
		return
	}
	enc := snappy.Encode(b.packed, b.block)
	_, hdr := binary.Uvarint(enc) // the block's own length: the body has the whole one
	b.out = append(b.out, enc[hdr:]...)
	b.block = b.block[:0]
}

// export posts the requests with up to max_batch_request_parallelism at a time and joins the errors.
func (s *rwSender) export(ctx context.Context, reqs []*prompb.WriteRequest) error {
	if len(reqs) == 1 {
		return s.encodeAndPost(ctx, reqs[0])
	}
	input := make(chan *prompb.WriteRequest, len(reqs))
	for _, r := range reqs {
		input <- r
	}
	close(input)
	workers := min(s.parallelism, len(reqs))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range input {
				errs[w] = errors.Join(errs[w], s.encodeAndPost(ctx, r))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *rwSender) encodeAndPost(ctx context.Context, req *prompb.WriteRequest) error {
	buf := encodePool.Get().(*encodeBuffers)
	defer encodePool.Put(buf)
	body, err := buf.encode(req)
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return s.post(ctx, body)
}

// post sends one encoded request. Classification as contrib's: 2xx delivered; 5xx (and 429 with its
// RetryOn429 gate) retryable; other answers permanent; a cancelled context permanent, an expired
// one retryable; transport errors retryable.
func (s *rwSender) post(ctx context.Context, body []byte) error {
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	// https://prometheus.io/docs/specs/prw/remote_write_spec/
	req.Header.Add("Content-Encoding", "snappy")
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if len(s.metadataKeys) > 0 {
		info := client.FromContext(ctx).Metadata
		for _, k := range s.metadataKeys {
			for _, v := range info.Get(k) {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return contextError(err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	// The message and fields of contrib's, so that quietCore treats both senders alike.
	s.logger.Error(msgSendFailed,
		zap.Int("status_code", resp.StatusCode),
		zap.String("status", resp.Status),
		zap.String("endpoint", s.endpoint),
		zap.String("error", string(answer)),
	)
	rerr := fmt.Errorf("remote write request failed: %s: %q", resp.Status, answer)
	if resp.StatusCode >= 500 && resp.StatusCode < 600 || s.retryOn429 && resp.StatusCode == http.StatusTooManyRequests {
		return rerr
	}
	return consumererror.NewPermanent(rerr)
}

// contextError classifies an error that may come from the request's context: cancelled (shutdown)
// is permanent as in contrib; a deadline or transport error stays retryable.
func contextError(err error) error {
	if errors.Is(err, context.Canceled) {
		return consumererror.NewPermanent(err)
	}
	return err
}
