package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pcommon"
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
	numReasons
)

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

// enforce checks attrs; it counts violations per reason into counts, removes the violating
// attributes (drop_attribute: removed is true) and reports whether the data carrying attrs
// must be dropped (drop_data with at least one violation).
func (s *schema) enforce(attrs pcommon.Map, counts *[numReasons]int) (drop, removed bool) {
	found := false
	for k, v := range attrs.All() {
		if r := s.verdict(k, v); r != reasonNone {
			counts[r]++
			found = true
		}
	}
	if !found {
		return false, false
	}
	if s.dropData {
		return true, false
	}
	attrs.RemoveIf(func(k string, v pcommon.Value) bool { return s.verdict(k, v) != reasonNone })
	return false, true
}
