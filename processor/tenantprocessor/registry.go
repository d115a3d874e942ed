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
// per change and counted.
type registryWatcher struct {
	spec      *registrySpec
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	apply     func(*registryData)

	mu       sync.Mutex
	seen     fileStamp // stamp seen at the last check
	loadedAt fileStamp // stamp of the file last loaded (or refused)
	loaded   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

var (
	attrResultSuccess = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "success")))
	attrResultError   = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error")))
)

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
	reg, err := w.load()
	if err != nil {
		w.telemetry.ProcessorTenantRegistryReloads.Add(ctx, 1, attrResultError)
		if w.loaded {
			w.logger.Warn("Registry file changed but does not load; keeping the last good registry", zap.String("path", w.spec.path), zap.Error(err))
		} else {
			w.logger.Error("Registry file does not load; resources are labelled without it until it is fixed", zap.String("path", w.spec.path), zap.Error(err))
		}
		return
	}
	w.apply(reg)
	w.loaded = true
	w.telemetry.ProcessorTenantRegistryReloads.Add(ctx, 1, attrResultSuccess)
	w.logger.Info("Registry loaded", zap.String("path", w.spec.path), zap.Int("entries", len(reg.entries)))
}

func (w *registryWatcher) load() (*registryData, error) {
	data, err := os.ReadFile(w.spec.path)
	if err != nil {
		return nil, err
	}
	reg, err := parseRegistry(data, w.spec.format, w.spec.key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.spec.path, err)
	}
	return reg, nil
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
