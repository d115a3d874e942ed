package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	yaml "go.yaml.in/yaml/v3"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
)

// registryData is one loaded registry: key value -> attributes to set (sorted by name).
type registryData struct {
	entries map[string][]kv
}

// parseRegistry parses a registry file. YAML: a mapping from key value to a mapping of
// attributes, or a sequence of mappings each holding the key attribute. CSV: a header row
// naming the columns (one of them the key attribute), one row per key; empty cells are unset.
func parseRegistry(data []byte, format, key string) (*registryData, error) {
	var rows []map[string]string
	var err error
	if format == "csv" {
		rows, err = parseRegistryCSV(data, key)
	} else {
		rows, err = parseRegistryYAML(data, key)
	}
	if err != nil {
		return nil, err
	}
	reg := &registryData{entries: make(map[string][]kv, len(rows))}
	for _, row := range rows {
		k := row[key]
		if _, dup := reg.entries[k]; dup {
			return nil, fmt.Errorf("duplicate %s %q", key, k)
		}
		var attrs []kv
		for _, name := range sortedKeys(row) {
			if name == key || row[name] == "" {
				continue
			}
			attrs = append(attrs, kv{name, row[name]})
		}
		reg.entries[k] = attrs
	}
	return reg, nil
}

func parseRegistryYAML(data []byte, key string) ([]map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file: empty registry
	}
	root := doc.Content[0]
	var rows []map[string]string
	switch root.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				return nil, fmt.Errorf("line %d: %s must be a non-empty scalar", k.Line, key)
			}
			row, err := yamlAttributes(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s %q: %w", v.Line, key, k.Value, err)
			}
			if other, ok := row[key]; ok && other != k.Value {
				return nil, fmt.Errorf("line %d: %s %q also sets %s to %q", v.Line, key, k.Value, key, other)
			}
			row[key] = k.Value
			rows = append(rows, row)
		}
	case yaml.SequenceNode:
		for _, v := range root.Content {
			row, err := yamlAttributes(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", v.Line, err)
			}
			if row[key] == "" {
				return nil, fmt.Errorf("line %d: entry without %s", v.Line, key)
			}
			rows = append(rows, row)
		}
	default:
		return nil, fmt.Errorf("line %d: want a mapping (%s: attributes) or a list of entries", root.Line, key)
	}
	return rows, nil
}

func yamlAttributes(n *yaml.Node) (map[string]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return map[string]string{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("want a mapping of attribute names to values")
	}
	row := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, fmt.Errorf("line %d: attribute names must be non-empty scalars", k.Line)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: attribute %q: value must be a scalar", v.Line, k.Value)
		}
		if _, dup := row[k.Value]; dup {
			return nil, fmt.Errorf("line %d: attribute %q given twice", k.Line, k.Value)
		}
		if v.Tag == "!!null" {
			row[k.Value] = ""
			continue
		}
		row[k.Value] = v.Value
	}
	return row, nil
}

func parseRegistryCSV(data []byte, key string) ([]map[string]string, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keyCol := -1
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if h == "" {
			return nil, fmt.Errorf("header: column %d has no name", i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("header: column %q given twice", h)
		}
		seen[h] = true
		if h == key {
			keyCol = i
		}
	}
	if keyCol < 0 {
		return nil, fmt.Errorf("header: no %s column (header %v)", key, header)
	}
	var rows []map[string]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if strings.TrimSpace(rec[keyCol]) == "" {
			return nil, fmt.Errorf("line %d: empty %s", line, key)
		}
		row := make(map[string]string, len(rec))
		for i, v := range rec {
			row[header[i]] = strings.TrimSpace(v)
		}
		rows = append(rows, row)
	}
}

// registryWatcher loads the registry file and reloads it when it changes (mtime, size). A new
// file that does not load leaves the last good registry in use; the failure is logged once
// per change and counted. So does a file that loads but looks damaged (see suspicious).
type registryWatcher struct {
	spec      *registrySpec
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	apply     func(*registryData)

	mu       sync.Mutex
	seen     fileStamp // stamp seen at the last check
	loadedAt fileStamp // stamp of the file last loaded (or refused)
	inUse    *registryData
	inUseRaw []byte // content of the registry in use (to recognise a copy of it cut short)
	refused  []byte // content last refused as suspicious (warned and counted once)

	stop chan struct{}
	wg   sync.WaitGroup
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

// Reasons a reload is refused although the file parses (attribute reason of the reload counter).
const (
	refusedEmpty     = "empty"     // no entries, replacing a registry that has some
	refusedTruncated = "truncated" // an entry lost its tenant: the file was cut inside it
	refusedShrink    = "shrink"    // more than max_shrink of the entries removed or stripped
)

var (
	attrResultSuccess = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "success")))
	attrResultError   = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error")))
	attrResultRefused = map[string]metric.AddOption{}
)

func init() {
	for _, r := range []string{refusedEmpty, refusedTruncated, refusedShrink} {
		attrResultRefused[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "refused"), attribute.String("reason", r)))
	}
}

// verdict is why a loaded registry is not applied ("" when it may be) and what it would do.
type verdict struct {
	reason  string
	dropped []string // entries in use that the new registry removes or strips of their tenant, sorted
	cut     []string // entries still listed whose tenant is gone (or cut short), sorted
}

// tenantOf returns the tenant an entry sets ("" when none).
func (r *registryData) tenantOf(key, tenantKey string) (string, bool) {
	attrs, ok := r.entries[key]
	if !ok {
		return "", false
	}
	for _, a := range attrs {
		if a.key == tenantKey {
			return a.value, true
		}
	}
	return "", true
}

// suspicious judges a registry about to replace the one in use. An edit adds, changes or
// removes a few entries; a damaged file (truncated by a failed copy, a full disk, an editor
// or a tool that empties the file before writing it) loses everything after the cut and
// leaves its last entry without the attributes that followed. Applying it would hand those
// devices' data to another tenant, so it is refused unless the configuration says that such
// a change is intended. cutShort says the new content is a strict prefix of the content in
// use: a tenant that changed in that file is a value cut in the middle.
func (s *registrySpec) suspicious(cur, next *registryData, cutShort bool) verdict {
	var v verdict
	if cur == nil || len(cur.entries) == 0 {
		return v // nothing to lose: the first load, or an empty registry in use
	}
	if len(next.entries) == 0 {
		if !s.allowEmpty {
			v.reason = refusedEmpty
		}
		return v
	}
	if s.maxShrink >= 1 {
		return v
	}
	for _, k := range sortedKeys(cur.entries) {
		old, _ := cur.tenantOf(k, s.tenantKey)
		now, listed := next.tenantOf(k, s.tenantKey)
		switch {
		case !listed:
			v.dropped = append(v.dropped, k)
		case old != "" && now == "":
			v.dropped = append(v.dropped, k)
			v.cut = append(v.cut, k)
		case old != "" && old != now && cutShort:
			v.cut = append(v.cut, k)
		}
	}
	switch {
	case len(v.cut) > 0:
		v.reason = refusedTruncated
	case float64(len(v.dropped)) > s.maxShrink*float64(len(cur.entries)):
		v.reason = refusedShrink
	}
	return v
}

// check loads the file when it changed and then stayed unchanged for one check interval (so a
// file still being written is not loaded half-way); force loads it at once.
func (w *registryWatcher) check(ctx context.Context, force bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var stamp fileStamp
	if fi, err := os.Stat(w.spec.path); err == nil {
		stamp = fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	}
	stable := stamp == w.seen
	w.seen = stamp
	if !force && (!stable || stamp == w.loadedAt) {
		return
	}
	w.loadedAt = stamp
	raw, reg, err := w.load()
	if err != nil {
		w.refused = nil
		w.telemetry.ProcessorTenantRegistryReloads.Add(ctx, 1, attrResultError)
		if w.inUse != nil {
			w.logger.Warn("Registry file changed but does not load; keeping the last good registry", zap.String("path", w.spec.path), zap.Error(err))
		} else {
			w.logger.Error("Registry file does not load; resources are labelled without it until it is fixed", zap.String("path", w.spec.path), zap.Error(err))
		}
		return
	}
	cutShort := len(raw) < len(w.inUseRaw) && bytes.HasPrefix(w.inUseRaw, raw)
	if v := w.spec.suspicious(w.inUse, reg, cutShort); v.reason != "" {
		// A file rewritten with the same content (config management runs, touch) is not
		// reported again.
		if w.refused != nil && bytes.Equal(raw, w.refused) {
			return
		}
		w.refused = raw
		w.telemetry.ProcessorTenantRegistryReloads.Add(ctx, 1, attrResultRefused[v.reason])
		w.logger.Warn(refusalMessage(v.reason),
			zap.String("path", w.spec.path),
			zap.String("reason", v.reason),
			zap.Int("entries_in_use", len(w.inUse.entries)),
			zap.Int("entries_in_file", len(reg.entries)),
			zap.Int("entries_removed_or_without_tenant", len(v.dropped)),
			zap.Strings("examples", examples(v)),
			zap.Float64("max_shrink", w.spec.maxShrink))
		return
	}
	w.refused = nil
	w.apply(reg)
	if w.inUse == nil && len(reg.entries) == 0 {
		w.logger.Warn("Registry file has no entries; resources are labelled by rules and defaults until devices are added", zap.String("path", w.spec.path))
	}
	w.inUse, w.inUseRaw = reg, raw
	w.telemetry.ProcessorTenantRegistryReloads.Add(ctx, 1, attrResultSuccess)
	w.logger.Info("Registry loaded", zap.String("path", w.spec.path), zap.Int("entries", len(reg.entries)))
}

func refusalMessage(reason string) string {
	switch reason {
	case refusedEmpty:
		return "Registry file has no entries; keeping the last good registry (an emptied or truncated file?). " +
			"If the registry is meant to be empty, set registry::allow_empty: true or restart the collector"
	case refusedTruncated:
		return "Registry file has entries that lost their tenant; keeping the last good registry (a file cut off in the middle of an entry?). " +
			"Replace the file atomically (write a temporary file, then rename it); to take a tenant away on purpose, remove the whole entry " +
			"(or set registry::max_shrink: 1)"
	default:
		return "Registry file removes or strips more entries than registry::max_shrink allows; keeping the last good registry (a truncated file?). " +
			"If the shrink is intended, raise registry::max_shrink, shrink in steps, or restart the collector"
	}
}

// examples names a few of the entries a refused reload would have taken the tenant from.
func examples(v verdict) []string {
	keys := v.cut
	if len(keys) == 0 {
		keys = v.dropped
	}
	return keys[:min(len(keys), 5)]
}

func (w *registryWatcher) load() ([]byte, *registryData, error) {
	data, err := os.ReadFile(w.spec.path)
	if err != nil {
		return nil, nil, err
	}
	reg, err := parseRegistry(data, w.spec.format, w.spec.key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.spec.path, err)
	}
	return data, reg, nil
}

func (w *registryWatcher) start(ctx context.Context) {
	w.check(ctx, true)
	if w.spec.interval <= 0 {
		return
	}
	stop := make(chan struct{})
	w.stop = stop
	w.wg.Go(func() {
		t := time.NewTicker(w.spec.interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.check(context.Background(), false)
			}
		}
	})
}

func (w *registryWatcher) shutdown() {
	if w.stop != nil {
		close(w.stop)
		w.stop = nil
	}
	w.wg.Wait()
}
