package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// reason is why an attribute violates the schema.
type reason uint8

const (
	reasonNone reason = iota
	reasonKeyPattern
	reasonForbidden
	reasonValueLength
	// reasonDuplicate: a data point that became identical (attributes and timestamp) to an
	// earlier one of its metric once attributes were dropped; it is dropped.
	reasonDuplicate
	// reasonValue: an attribute value outside attribute_values or the vocabulary's.
	reasonValue
	// reasonUnknownMetric: a metric under metric_prefixes (or electrical. with the vocabulary) that is
	// not listed; the metric is dropped.
	reasonUnknownMetric
	// reasonWrongUnit: a listed metric with another unit; the metric is dropped.
	reasonWrongUnit
	// reasonMissing: a data point of a vocabulary quantity without an attribute the quantity requires
	// (phase); it is dropped.
	reasonMissing
	numReasons
)

// vocabularyElectrical is the one built-in vocabulary (internal/device).
const vocabularyElectrical = "electrical"

func (r reason) String() string {
	switch r {
	case reasonKeyPattern:
		return "key_pattern"
	case reasonForbidden:
		return "forbidden_key"
	case reasonValueLength:
		return "value_length"
	case reasonDuplicate:
		return "duplicate_after_drop"
	case reasonValue:
		return "value_not_allowed"
	case reasonUnknownMetric:
		return "unknown_metric"
	case reasonWrongUnit:
		return "wrong_unit"
	case reasonMissing:
		return "missing_attribute"
	}
	return "none"
}

// maxKeyVerdicts bounds the per-key verdict cache; keys beyond it are checked each time.
const maxKeyVerdicts = 4096

type schema struct {
	pattern   *regexp.Regexp
	forbidden map[string]bool
	globs     []*regexp.Regexp
	maxLen    int
	dropData  bool
	// values: key → allowed values (attribute_values).
	values map[string]map[string]bool
	// units, prefixes, vocab: the metric allow-list (metricVerdict).
	units    map[string]string
	prefixes []string
	vocab    bool
	// quantities: the vocabulary's metrics, their settled and frozen records included (no lookup
	// allocates on the data path).
	quantities map[string]*device.Quantity

	// verdicts is a copy-on-write map key -> reason (reads are lock-free).
	verdicts atomic.Pointer[map[string]reason]
	mu       sync.Mutex
}

func compileSchema(c SchemaConfig) (*schema, []error) {
	var errs []error
	s := &schema{forbidden: map[string]bool{}, maxLen: c.MaxValueLength}
	configured := false
	if c.AllowedKeyPattern != "" {
		configured = true
		re, err := regexp.Compile(c.AllowedKeyPattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("schema::allowed_key_pattern: %w", err))
		}
		s.pattern = re
	}
	for i, k := range c.ForbiddenKeys {
		configured = true
		switch {
		case k == "":
			errs = append(errs, fmt.Errorf("schema::forbidden_keys[%d]: empty key", i))
		case containsGlob(k):
			s.globs = append(s.globs, regexp.MustCompile(globToRegexp(k)))
		default:
			s.forbidden[k] = true
		}
	}
	if c.MaxValueLength < 0 {
		errs = append(errs, fmt.Errorf("schema::max_value_length: %d, must not be negative (0: no limit)", c.MaxValueLength))
	}
	if c.MaxValueLength > 0 {
		configured = true
	}
	for k, vals := range c.AttributeValues {
		configured = true
		if len(vals) == 0 {
			errs = append(errs, fmt.Errorf("schema::attribute_values::%s: empty list; list the values allowed for %s", k, k))
		}
		if s.values == nil {
			s.values = map[string]map[string]bool{}
		}
		s.values[k] = map[string]bool{}
		for _, v := range vals {
			s.values[k][v] = true
		}
	}
	if len(c.MetricUnits) > 0 {
		configured = true
		s.units = c.MetricUnits
	}
	for i, p := range c.MetricPrefixes {
		configured = true
		if p == "" {
			errs = append(errs, fmt.Errorf("schema::metric_prefixes[%d]: empty prefix; give the start of metric names (e.g. acme.)", i))
			continue
		}
		s.prefixes = append(s.prefixes, p)
	}
	switch c.Vocabulary {
	case "":
	case vocabularyElectrical:
		configured = true
		s.vocab = true
		s.quantities = map[string]*device.Quantity{}
		for _, q := range device.Vocabulary {
			for _, name := range []string{q.Metric, q.Metric + device.SuffixSettled, q.Metric + device.SuffixFrozen} {
				if rq, ok := device.LookupQuantity(name); ok {
					s.quantities[name] = &rq
				}
			}
		}
	default:
		errs = append(errs, fmt.Errorf("schema::vocabulary: %q, want %s (or empty: none)", c.Vocabulary, vocabularyElectrical))
	}
	switch c.Action {
	case SchemaDropAttribute:
	case SchemaDropData:
		s.dropData = true
	default:
		errs = append(errs, fmt.Errorf("schema::action: %q, want drop_attribute or drop_data", c.Action))
	}
	if !configured {
		return nil, errs
	}
	empty := map[string]reason{}
	s.verdicts.Store(&empty)
	return s, errs
}

func containsGlob(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}

// keyVerdict says whether a key may be used; cached per key.
func (s *schema) keyVerdict(k string) reason {
	if r, ok := (*s.verdicts.Load())[k]; ok {
		return r
	}
	r := s.computeKey(k)
	s.mu.Lock()
	old := *s.verdicts.Load()
	if len(old) < maxKeyVerdicts {
		next := make(map[string]reason, len(old)+1)
		for key, v := range old {
			next[key] = v
		}
		next[k] = r
		s.verdicts.Store(&next)
	}
	s.mu.Unlock()
	return r
}

func (s *schema) computeKey(k string) reason {
	if s.forbidden[k] {
		return reasonForbidden
	}
	for _, g := range s.globs {
		if g.MatchString(k) {
			return reasonForbidden
		}
	}
	if s.pattern != nil && !s.pattern.MatchString(k) {
		return reasonKeyPattern
	}
	return reasonNone
}

func (s *schema) verdict(k string, v pcommon.Value) reason {
	if r := s.keyVerdict(k); r != reasonNone {
		return r
	}
	if allowed, ok := s.values[k]; ok && !allowed[v.AsString()] {
		return reasonValue
	}
	if s.maxLen > 0 {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			if len(v.Str()) > s.maxLen {
				return reasonValueLength
			}
		case pcommon.ValueTypeBytes:
			if v.Bytes().Len() > s.maxLen {
				return reasonValueLength
			}
		}
	}
	return reasonNone
}

// checksMetrics tells whether metric names and units are checked (metricVerdict).
func (s *schema) checksMetrics() bool {
	return s.vocab || len(s.units) > 0 || len(s.prefixes) > 0
}

// metricVerdict decides on one metric: a reason to drop it (a name under a checked prefix that is not
// listed, or a listed name with another unit), else the vocabulary quantity whose attribute values
// its points must have (nil: none).
func (s *schema) metricVerdict(name, unit string) (reason, *device.Quantity) {
	if want, ok := s.units[name]; ok {
		if unit != want {
			return reasonWrongUnit, nil
		}
		return reasonNone, nil
	}
	if s.vocab && strings.HasPrefix(name, device.VocabularyPrefix) {
		q, ok := s.quantities[name]
		switch {
		case !ok:
			return reasonUnknownMetric, nil
		case q.Unit != unit:
			return reasonWrongUnit, nil
		}
		return reasonNone, q
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(name, p) {
			return reasonUnknownMetric, nil
		}
	}
	return reasonNone, nil
}

// verdictIn is verdict for an attribute of a data point of quantity q (nil: of no vocabulary).
func (s *schema) verdictIn(k string, v pcommon.Value, q *device.Quantity) reason {
	if r := s.verdict(k, v); r != reasonNone {
		return r
	}
	if q != nil {
		if allowed := q.AllowedValues(k); allowed != nil && !slices.Contains(allowed, v.AsString()) {
			return reasonValue
		}
	}
	return reasonNone
}

// enforce checks attrs; it counts violations per reason into counts, removes the violating
// attributes (drop_attribute: removed is true) and reports whether the data carrying attrs
// must be dropped (drop_data with at least one violation).
func (s *schema) enforce(attrs pcommon.Map, counts *[numReasons]int) (drop, removed bool) {
	return s.enforceIn(attrs, counts, nil)
}

// enforceIn is enforce for the attributes of a data point of quantity q (nil: of no vocabulary).
func (s *schema) enforceIn(attrs pcommon.Map, counts *[numReasons]int, q *device.Quantity) (drop, removed bool) {
	found := false
	for k, v := range attrs.All() {
		if r := s.verdictIn(k, v, q); r != reasonNone {
			counts[r]++
			found = true
		}
	}
	if found {
		if s.dropData {
			return true, false
		}
		attrs.RemoveIf(func(k string, v pcommon.Value) bool { return s.verdictIn(k, v, q) != reasonNone })
		removed = true
	}
	// A point missing a required attribute (phase), or left without it by drop_attribute, cannot be
	// repaired: it is dropped whatever the action.
	if q != nil {
		for _, k := range q.Required() {
			if _, ok := attrs.Get(k); !ok {
				counts[reasonMissing]++
				return true, removed
			}
		}
	}
	return false, removed
}
