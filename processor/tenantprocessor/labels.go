package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"encoding/binary"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

const (
	attrServiceName     = "service.name"
	attrServiceInstance = "service.instance.id"
)

type kv struct{ key, value string }

// template is a value with ${attr} references.
type template struct {
	parts []tpart
	refs  []string
}

type tpart struct {
	text  string
	isRef bool
}

func parseTemplate(s string) (template, error) {
	var t template
	for len(s) > 0 {
		i := strings.Index(s, "${")
		if i < 0 {
			t.parts = append(t.parts, tpart{text: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tpart{text: s[:i]})
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return t, fmt.Errorf("unclosed ${ in %q", s)
		}
		name := s[i+2 : i+2+end]
		if name == "" {
			return t, fmt.Errorf("empty ${} in %q", s)
		}
		t.parts = append(t.parts, tpart{text: name, isRef: true})
		t.refs = append(t.refs, name)
		s = s[i+2+end+1:]
	}
	return t, nil
}

// render fills the template from attrs; ok is false when a referenced attribute is missing
// or empty (the attribute is then not set).
func (t template) render(attrs map[string]string) (string, bool) {
	if len(t.parts) == 1 && !t.parts[0].isRef {
		return t.parts[0].text, true
	}
	var b strings.Builder
	for _, p := range t.parts {
		if !p.isRef {
			b.WriteString(p.text)
			continue
		}
		v := attrs[p.text]
		if v == "" {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

type condKind uint8

const (
	condExact condKind = iota
	condRegex
	condExists
)

type condition struct {
	key    string
	kind   condKind
	exact  string
	re     *regexp.Regexp
	exists bool
}

func (c condition) holds(attrs map[string]string) bool {
	v, ok := attrs[c.key]
	switch c.kind {
	case condExists:
		return ok == c.exists
	case condExact:
		return ok && v == c.exact
	default:
		return ok && c.re.MatchString(v)
	}
}

type setOp struct {
	key  string
	tmpl template
}

type rule struct {
	conds []condition
	set   []setOp
	stop  bool
}

type registrySpec struct {
	path, format, key string
	interval          time.Duration
	tenantKey         string
	allowEmpty        bool
	maxShrink         float64
}

// plan is the compiled configuration.
type plan struct {
	tenantKey      string
	registry       *registrySpec
	rules          []rule
	defaults       []kv
	jobInstance    []setOp
	required       []string
	requiredAction RequiredAction
	defaultTenant  string
	schema         *schema
	budget         *BudgetConfig

	// relevant are the resource attributes the labelling decision depends on, sorted.
	relevant []string
	// labels is false when no labelling step is configured.
	labels bool
}

func (p *plan) finish() {
	set := map[string]bool{p.tenantKey: true}
	if p.registry != nil {
		set[p.registry.key] = true
	}
	for _, r := range p.rules {
		for _, c := range r.conds {
			set[c.key] = true
		}
		for _, op := range r.set {
			for _, ref := range op.tmpl.refs {
				set[ref] = true
			}
		}
	}
	for _, d := range p.defaults {
		set[d.key] = true
	}
	for _, op := range p.jobInstance {
		for _, ref := range op.tmpl.refs {
			set[ref] = true
		}
	}
	for _, a := range p.required {
		set[a] = true
	}
	p.relevant = slices.Sorted(maps.Keys(set))
	p.labels = p.registry != nil || len(p.rules) > 0 || len(p.defaults) > 0 || len(p.jobInstance) > 0 || len(p.required) > 0
}

// decision is what the labelling steps do to a resource with given relevant attributes.
type decision struct {
	ops     []kv   // attributes to upsert
	tenant  string // tenant after labelling ("" when none)
	missing bool   // a required attribute is missing (before the action)
	action  RequiredAction
}

// decide runs registry, rules, defaults, job/instance and the required check on the relevant
// attributes of a resource (present ones only).
func (p *plan) decide(in map[string]string, reg *registryData) *decision {
	cur := maps.Clone(in)
	if reg != nil && p.registry != nil {
		if key, ok := cur[p.registry.key]; ok {
			for _, e := range reg.entries[key] {
				cur[e.key] = e.value
			}
		}
	}
	var before map[string]string
	for _, r := range p.rules {
		matched := true
		for _, c := range r.conds {
			if !c.holds(cur) {
				matched = false
				break
			}
		}
		if !matched {
			continue
		}
		// Templates see the attributes as they were before this rule.
		before = maps.Clone(cur)
		for _, op := range r.set {
			if v, ok := op.tmpl.render(before); ok {
				cur[op.key] = v
			}
		}
		if r.stop {
			break
		}
	}
	for _, d := range p.defaults {
		if _, ok := cur[d.key]; !ok {
			cur[d.key] = d.value
		}
	}
	if len(p.jobInstance) > 0 {
		before = maps.Clone(cur)
		for _, op := range p.jobInstance {
			if v, ok := op.tmpl.render(before); ok {
				cur[op.key] = v
			}
		}
	}
	d := &decision{action: p.requiredAction}
	for _, a := range p.required {
		if cur[a] == "" {
			d.missing = true
			break
		}
	}
	if d.missing && p.requiredAction == RequiredDefaultTenant {
		cur[p.tenantKey] = p.defaultTenant
	}
	d.tenant = cur[p.tenantKey]
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if old, ok := in[k]; ok && old == cur[k] {
			continue
		}
		d.ops = append(d.ops, kv{k, cur[k]})
	}
	return d
}

// maxDecisions bounds the decision cache (entries are small: the ops of one resource kind).
const maxDecisions = 1 << 14

// labeler applies the plan to resources, caching the decision per combination of relevant
// attribute values; the cache is replaced whenever the registry changes.
type labeler struct {
	plan  *plan
	state atomic.Pointer[labelState]
}

type labelState struct {
	reg   *registryData
	mu    sync.RWMutex
	cache map[string]*decision
}

func newLabeler(p *plan) *labeler {
	l := &labeler{plan: p}
	l.setRegistry(nil)
	return l
}

func (l *labeler) setRegistry(reg *registryData) {
	l.state.Store(&labelState{reg: reg, cache: make(map[string]*decision)})
}

// label applies the labelling to a resource's attributes and returns the decision.
// buf is scratch space reused across calls.
func (l *labeler) label(attrs pcommon.Map, buf *[]byte) *decision {
	st := l.state.Load()
	key := (*buf)[:0]
	for _, k := range l.plan.relevant {
		v, ok := attrs.Get(k)
		if !ok {
			key = append(key, 0)
			continue
		}
		key = append(key, 1)
		s := valueString(v)
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	*buf = key

	st.mu.RLock()
	d, ok := st.cache[string(key)]
	st.mu.RUnlock()
	if !ok {
		in := make(map[string]string, len(l.plan.relevant))
		for _, k := range l.plan.relevant {
			if v, ok := attrs.Get(k); ok {
				in[k] = valueString(v)
			}
		}
		d = l.plan.decide(in, st.reg)
		st.mu.Lock()
		if len(st.cache) >= maxDecisions {
			clear(st.cache)
		}
		st.cache[string(key)] = d
		st.mu.Unlock()
	}
	if len(d.ops) > 0 {
		attrs.EnsureCapacity(attrs.Len() + len(d.ops))
		for _, op := range d.ops {
			attrs.PutStr(op.key, op.value)
		}
	}
	return d
}

func valueString(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}
