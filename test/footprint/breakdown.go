package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// famStats is what one metric family (one __name__) cost in the requests counted.
type famStats struct {
	series  map[string]struct{}
	samples int
	// protobuf bytes of the family's TimeSeries: their labels, and their samples (the rest, field tags
	// and lengths, is in raw)
	labelBytes, sampleBytes, raw int
	// snappy of the family's TimeSeries alone, per request: with samples, and with labels only
	snappy, snappyLabels int
}

// reqBreakdown is one request taken apart by family, and what it would have cost re-encoded with every
// sample's timestamp rounded down to the poll interval (one time for every series of a poll, as
// Telegraf stamps a gather).
type reqBreakdown struct {
	at      time.Time
	bytes   int // as sent
	raw     int // uncompressed
	aligned int // snappy, timestamps rounded down to the interval
	// snappy without the host metrics' series, and the device-polls of the request: a device-data
	// figure to compare with a collector that sends only the devices' readings
	noHost   int
	families map[string]*famStats
	// per device_id in this request: distinct sample timestamps over all its series, and its polls
	// (up-metric samples); stamps == polls when a poll's readings and health share one timestamp
	devStamps, devPolls int
}

// category sorts a family into the parts of a small site's traffic.
func category(name string) string {
	switch {
	case name == "target_info":
		return "target_info"
	case strings.HasPrefix(name, "system_"), strings.HasPrefix(name, "process_"):
		return "host metrics"
	case strings.HasPrefix(name, "iiot_"):
		return "health & quantiles"
	default:
		return "readings"
	}
}

// breakdown takes one decoded request apart (called under s.mu).
func (s *rwSink) breakdown(at time.Time, bytes, raw int, wr *prompb.WriteRequest) reqBreakdown {
	b := reqBreakdown{at: at, bytes: bytes, raw: raw, families: map[string]*famStats{}}
	byFam := map[string][]prompb.TimeSeries{}
	stamps := map[string]map[int64]struct{}{}
	polls := map[string]int{}
	var key strings.Builder
	for _, ts := range wr.Timeseries {
		name, dev := "", ""
		key.Reset()
		for _, l := range ts.Labels {
			key.WriteString(l.Name + "\x00" + l.Value + "\x00")
			switch l.Name {
			case "__name__":
				name = l.Value
			case "device_id":
				dev = l.Value
			}
		}
		f := b.families[name]
		if f == nil {
			f = &famStats{series: map[string]struct{}{}}
			b.families[name] = f
		}
		f.series[key.String()] = struct{}{}
		f.samples += len(ts.Samples) + len(ts.Histograms)
		for _, l := range ts.Labels {
			f.labelBytes += l.Size()
		}
		for _, smp := range ts.Samples {
			f.sampleBytes += smp.Size()
		}
		for _, h := range ts.Histograms {
			f.sampleBytes += h.Size()
		}
		f.raw += ts.Size()
		byFam[name] = append(byFam[name], ts)
		if dev != "" && name != "target_info" {
			if stamps[dev] == nil {
				stamps[dev] = map[int64]struct{}{}
			}
			for _, smp := range ts.Samples {
				stamps[dev][smp.Timestamp] = struct{}{}
			}
			if name == s.upMetric {
				polls[dev] += len(ts.Samples)
			}
		}
	}
	for dev, p := range polls {
		b.devStamps += len(stamps[dev])
		b.devPolls += p
	}
	for name, series := range byFam {
		f := b.families[name]
		f.snappy = snappyLen(&prompb.WriteRequest{Timeseries: series})
		bare := make([]prompb.TimeSeries, len(series))
		for i, ts := range series {
			bare[i] = prompb.TimeSeries{Labels: ts.Labels}
		}
		f.snappyLabels = snappyLen(&prompb.WriteRequest{Timeseries: bare})
	}
	devOnly := prompb.WriteRequest{Metadata: wr.Metadata}
	for _, ts := range wr.Timeseries {
		if category(metricName(ts.Labels)) != "host metrics" {
			devOnly.Timeseries = append(devOnly.Timeseries, ts)
		}
	}
	b.noHost = snappyLen(&devOnly)
	if step := s.align.Milliseconds(); step > 0 {
		al := prompb.WriteRequest{Metadata: wr.Metadata, Timeseries: make([]prompb.TimeSeries, len(wr.Timeseries))}
		for i, ts := range wr.Timeseries {
			al.Timeseries[i] = prompb.TimeSeries{Labels: ts.Labels, Histograms: ts.Histograms, Samples: slices.Clone(ts.Samples)}
			for j := range al.Timeseries[i].Samples {
				t := &al.Timeseries[i].Samples[j].Timestamp
				*t -= *t % step
			}
		}
		b.aligned = snappyLen(&al)
	}
	return b
}

func snappyLen(wr *prompb.WriteRequest) int {
	raw, err := wr.Marshal()
	if err != nil {
		return 0
	}
	return len(snappy.Encode(nil, raw))
}

// printBreakdown writes the breakdown of the requests that arrived from the given time on.
func (s *rwSink) printBreakdown(out io.Writer, title string, from time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fams := map[string]*famStats{}
	var bytes, raw, aligned, noHost, samples, requests, devStamps, devPolls, polls int
	for _, r := range s.breakdowns {
		if r.at.Before(from) {
			continue
		}
		requests++
		bytes += r.bytes
		raw += r.raw
		aligned += r.aligned
		noHost += r.noHost
		devStamps += r.devStamps
		devPolls += r.devPolls
		for name, f := range r.families {
			a := fams[name]
			if a == nil {
				a = &famStats{series: map[string]struct{}{}}
				fams[name] = a
			}
			for k := range f.series {
				a.series[k] = struct{}{}
			}
			a.samples += f.samples
			samples += f.samples
			if name == s.upMetric {
				polls += f.samples
			}
			a.labelBytes += f.labelBytes
			a.sampleBytes += f.sampleBytes
			a.raw += f.raw
			a.snappy += f.snappy
			a.snappyLabels += f.snappyLabels
		}
	}
	if requests == 0 {
		return
	}
	per := func(v, n int) string {
		if n == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", float64(v)/float64(n))
	}
	fmt.Fprintf(out, "\n%s: %d requests, %d samples, %d bytes sent (%s / sample), %d uncompressed (%s / sample)",
		title, requests, samples, bytes, per(bytes, samples), raw, per(raw, samples))
	if s.align > 0 {
		fmt.Fprintf(out, "; with every timestamp rounded down to %s: %d bytes (%s / sample, %.0f%% of sent)",
			s.align, aligned, per(aligned, samples), 100*float64(aligned)/float64(bytes))
	}
	if polls > 0 {
		fmt.Fprintf(out, "; without the host metrics: %d bytes, %s / device-poll (%s with them)", noHost, per(noHost, polls), per(bytes, polls))
	}
	if devPolls > 0 {
		fmt.Fprintf(out, "; distinct timestamps per device-poll (readings and health of a device): %.2f", float64(devStamps)/float64(devPolls))
	}
	fmt.Fprintln(out, ".")
	fmt.Fprintln(out, "Snappy columns compress each family alone per request (their sum exceeds what was sent); labels = the family's series without samples.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| family | series | samples | label bytes | sample bytes | protobuf bytes | snappy bytes | snappy labels only | snappy bytes / sample | share of snappy |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	type row struct {
		name string
		f    *famStats
	}
	cats := map[string]*famStats{}
	var rows []row
	totalSnappy := 0
	for name, f := range fams {
		rows = append(rows, row{name, f})
		totalSnappy += f.snappy
		c := cats[category(name)]
		if c == nil {
			c = &famStats{series: map[string]struct{}{}}
			cats[category(name)] = c
		}
		for k := range f.series {
			c.series[k] = struct{}{}
		}
		c.samples += f.samples
		c.labelBytes += f.labelBytes
		c.sampleBytes += f.sampleBytes
		c.raw += f.raw
		c.snappy += f.snappy
		c.snappyLabels += f.snappyLabels
	}
	line := func(name string, f *famStats) {
		fmt.Fprintf(out, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %.1f%% |\n", name, len(f.series), f.samples,
			f.labelBytes, f.sampleBytes, f.raw, f.snappy, f.snappyLabels, per(f.snappy, f.samples), 100*float64(f.snappy)/float64(totalSnappy))
	}
	var names []string
	for c := range cats {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		line("**"+c+"**", cats[c])
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].f.snappy > rows[j].f.snappy })
	for _, r := range rows {
		line(r.name, r.f)
	}
}

func metricName(labels []prompb.Label) string {
	for _, l := range labels {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}
