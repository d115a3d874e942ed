package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the otlp exporter compresses with gzip by default
)

// rwRequest is one remote-write request as it reached the sink.
type rwRequest struct {
	at      time.Time
	bytes   int // body as on the wire (snappy-compressed protobuf; HTTP headers not counted)
	samples int
}

// rwSink is a Prometheus remote-write (1.0) endpoint on loopback that counts what the collector sends:
// requests, compressed body bytes, samples and distinct series, and keeps every sample's timestamp so
// that the samples of a time window can be counted after the fact (batches arrive up to the exporter's
// flush timeout late).
type rwSink struct {
	upMetric       string // the health metric written once per device poll
	requestsMetric string // the cumulative count of a device's requests (sampled once a health interval and when it leaves its line)

	mu       sync.Mutex
	requests []rwRequest
	series   map[string]int // distinct label sets: labels besides __name__ (target_info: -1, not counted)
	stamps   []int64        // every sample's timestamp, ms
	upStamps []int64        // timestamps of upMetric's samples, ms
	maxUp    int64
	counters map[string][]point // requestsMetric's samples by series (its labels besides __name__)
	devUps   map[string][]int64 // upMetric's timestamps by series (its labels besides __name__): a device's polls
	first    chan struct{}      // closed by the first request that carries samples

	// with -breakdown: every request taken apart by family, and re-encoded with its timestamps rounded
	// down to align (the poll interval)
	breakdowns []reqBreakdown
	detail     bool
	align      time.Duration

	ln  net.Listener
	srv *http.Server
}

type point struct {
	ts int64
	v  float64
}

func newRWSink(upMetric, requestsMetric string) *rwSink {
	return &rwSink{
		upMetric: upMetric, requestsMetric: requestsMetric,
		series: map[string]int{}, counters: map[string][]point{}, devUps: map[string][]int64{}, first: make(chan struct{}),
	}
}

// start serves on a free loopback port; URL is then the remote-write endpoint.
func (s *rwSink) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

func (s *rwSink) URL() string { return "http://" + s.ln.Addr().String() + "/api/v1/write" }

func (s *rwSink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// ServeHTTP decodes one request; a body that is not snappy + prompb.WriteRequest is refused with 400
// (the exporter drops it rather than retrying) and not counted.
func (s *rwSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		http.Error(w, "protobuf: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.record(time.Now(), len(body), len(raw), &wr)
	w.WriteHeader(http.StatusNoContent)
}

func (s *rwSink) record(at time.Time, bytes, raw int, wr *prompb.WriteRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detail {
		s.breakdowns = append(s.breakdowns, s.breakdown(at, bytes, raw, wr))
	}
	n := 0
	var key, dev strings.Builder
	for _, ts := range wr.Timeseries {
		key.Reset()
		dev.Reset()
		name := ""
		for _, l := range ts.Labels {
			key.WriteString(l.Name)
			key.WriteByte(0)
			key.WriteString(l.Value)
			key.WriteByte(0)
			if l.Name == "__name__" {
				name = l.Value
				continue
			}
			dev.WriteString(l.Name)
			dev.WriteByte(0)
			dev.WriteString(l.Value)
			dev.WriteByte(0)
		}
		if name == "target_info" {
			s.series[key.String()] = -1
		} else {
			s.series[key.String()] = len(ts.Labels) - 1
		}
		up := name == s.upMetric
		if name == s.requestsMetric {
			k := dev.String()
			for _, smp := range ts.Samples {
				s.counters[k] = append(s.counters[k], point{smp.Timestamp, smp.Value})
			}
		}
		for _, smp := range ts.Samples {
			s.stamps = append(s.stamps, smp.Timestamp)
			if up {
				s.upStamps = append(s.upStamps, smp.Timestamp)
				s.devUps[dev.String()] = append(s.devUps[dev.String()], smp.Timestamp)
				s.maxUp = max(s.maxUp, smp.Timestamp)
			}
		}
		for _, h := range ts.Histograms {
			s.stamps = append(s.stamps, h.Timestamp)
		}
		n += len(ts.Samples) + len(ts.Histograms)
	}
	s.requests = append(s.requests, rwRequest{at: at, bytes: bytes, samples: n})
	if n > 0 && !s.started() {
		close(s.first)
	}
}

func (s *rwSink) started() bool {
	select {
	case <-s.first:
		return true
	default:
		return false
	}
}

// firstSample is when the first request carrying samples arrived.
func (s *rwSink) firstSample() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.requests {
		if r.samples > 0 {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// windowCounts is what the sink received stamped in a time window.
type windowCounts struct {
	samples int // every sample
	polls   int // upMetric samples: device polls
	// requestsMetric increments between each series' first sample (from the start of the run: the
	// counter comes once a health interval, a minute by default, so a window of 60 polls may hold only
	// one) and its last before the window's end, and the device's polls between them (its upMetric
	// samples after the first, up to the last): requests / polls is the requests a device-poll costs.
	// The first sample holds the first poll's requests (connection set-up): the increments leave them out.
	requests, requestPolls float64
}

// window counts what was stamped in [from, to), and the requests per poll up to to.
func (s *rwSink) window(from, to time.Time) windowCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, hi := from.UnixMilli(), to.UnixMilli()
	in := func(ts int64) bool { return ts >= lo && ts < hi }
	var c windowCounts
	for _, ts := range s.stamps {
		if in(ts) {
			c.samples++
		}
	}
	for _, ts := range s.upStamps {
		if in(ts) {
			c.polls++
		}
	}
	for k, pts := range s.counters {
		var first, last *point
		n := 0
		for i := range pts {
			if p := &pts[i]; p.ts < hi {
				if first == nil || p.ts < first.ts {
					first = p
				}
				if last == nil || p.ts > last.ts {
					last = p
				}
				n++
			}
		}
		// a counter that went down (a restart) would count negative requests: leave the series out
		if n < 2 || last.v < first.v {
			continue
		}
		polls := 0
		for _, ts := range s.devUps[k] {
			if ts > first.ts && ts <= last.ts {
				polls++
			}
		}
		if polls == 0 { // no up series of the device (switched off): one counter sample a poll
			polls = n - 1
		}
		c.requests += last.v - first.v
		c.requestPolls += float64(polls)
	}
	return c
}

// traffic sums the requests that arrived from the given time on.
func (s *rwSink) traffic(from time.Time) (requests, bytes, samples int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.requests {
		if !r.at.Before(from) {
			requests++
			bytes += r.bytes
			samples += r.samples
		}
	}
	return requests, bytes, samples
}

// seriesCount is the number of distinct label sets received.
func (s *rwSink) seriesCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// labelsPerSeries is the mean number of labels (besides __name__) of the distinct series other than
// target_info (one per resource), and the largest.
func (s *rwSink) labelsPerSeries() (mean float64, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum, n int
	for _, l := range s.series {
		if l < 0 {
			continue
		}
		sum += l
		n++
		most = max(most, l)
	}
	if n == 0 {
		return 0, 0
	}
	return float64(sum) / float64(n), most
}

// upThrough reports whether a device-poll sample stamped at or after t has arrived.
func (s *rwSink) upThrough(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxUp >= t.UnixMilli()
}

// traceSink is an OTLP/gRPC endpoint for the edge default's traces pipeline, so that its exporter
// delivers instead of retrying against a closed port (which would cost CPU a real site does not pay).
type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	mu    sync.Mutex
	spans int
	ln    net.Listener
	srv   *grpc.Server
}

func (t *traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	t.mu.Lock()
	t.spans += req.Traces().SpanCount()
	t.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

func (t *traceSink) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	t.ln = ln
	t.srv = grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(t.srv, t)
	go func() {
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			fmt.Fprintf(os.Stderr, "trace sink: %v\n", err)
		}
	}()
	return nil
}

func (t *traceSink) spanCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.spans
}

func (t *traceSink) close() { t.srv.Stop() }
