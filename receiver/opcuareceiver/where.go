package opcuareceiver

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// The `where` grammar of an events entry (README "Event filter"):
//
//	expr    = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | primary
//	primary = "(" expr ")" | "OfType" "(" nodeid ")" | operand op operand
//	op      = "==" | "!=" | "<" | "<=" | ">" | ">=" | "like"
//	operand = field | number | "string" | 'string' | true | false | nodeid
//	field   = a browse path from the event: Severity, SourceName, ActiveState/Id, 2:ErrorCode …
//	nodeid  = i=… | s=… | ns=<index>;… | nsu=<uri>;…
//
// Keywords are case-insensitive. It becomes the event filter's ContentFilter: each operator one element,
// fields SimpleAttributeOperands, constants LiteralOperands (node ids resolved against the session's
// namespaces at every connect).

// whereExpr is a parsed where clause: one ContentFilter element with its operands.
type whereExpr struct {
	op       ua.FilterOperator
	operands []whereOperand
}

// whereOperand is one operand: exactly one of the fields is set.
type whereOperand struct {
	expr    *whereExpr
	field   []*ua.QualifiedName
	fieldTy uint32 // event type the field's path starts at
	literal any    // bool, uint16, int32, int64, float64, string
	node    *nodeRef
	pos     int // where it starts in the clause
}

type whereToken struct {
	text   string
	quoted bool
	pos    int
}

// tokenizeWhere splits a where clause into words, quoted strings and the symbols ( ) == != < <= > >=.
func tokenizeWhere(s string) ([]whereToken, error) {
	var out []whereToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '(' || c == ')':
			out = append(out, whereToken{text: string(c), pos: i})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			op := s[i:j]
			if op == "=" {
				op = "=="
			}
			if op == "!" {
				return nil, fmt.Errorf("at %d: unknown operator %q (want == != < <= > >=)", i+1, op)
			}
			out = append(out, whereToken{text: op, pos: i})
			i = j
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("at %d: unterminated string", i+1)
			}
			out = append(out, whereToken{text: s[i+1 : i+1+j], quoted: true, pos: i})
			i += j + 2
		default:
			j := i
			// A node id (i=…, ns=2;s=…) holds "=": it runs to the next space or ")".
			stop := "()=!<>\"'"
			if looksLikeNodeID(s[i:]) {
				stop = ")"
			}
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune(stop, rune(s[j])) {
				j++
			}
			out = append(out, whereToken{text: s[i:j], pos: i})
			i = j
		}
	}
	return out, nil
}

type whereParser struct {
	src  string
	toks []whereToken
	i    int
}

// parseWhere parses a where clause.
func parseWhere(s string) (*whereExpr, error) {
	toks, err := tokenizeWhere(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, errors.New("empty")
	}
	p := &whereParser{src: s, toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errorf("unexpected %q", p.toks[p.i].text)
	}
	return e, nil
}

func (p *whereParser) errorf(format string, args ...any) error {
	pos := len(p.src)
	if p.i < len(p.toks) {
		pos = p.toks[p.i].pos
	}
	return p.errorAt(pos, format, args...)
}

// errorAt is an error at byte offset pos of the clause (reported from 1).
func (p *whereParser) errorAt(pos int, format string, args ...any) error {
	return fmt.Errorf("at %d: %s (grammar: OfType(<type node id>), <field> <op> <value> with op == != < <= > >= like, joined by and, or, not and parentheses)", pos+1, fmt.Sprintf(format, args...))
}

func (p *whereParser) peekKeyword(k string) bool {
	return p.i < len(p.toks) && !p.toks[p.i].quoted && strings.EqualFold(p.toks[p.i].text, k)
}

func (p *whereParser) or() (*whereExpr, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peekKeyword("or") {
		p.i++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = &whereExpr{op: ua.FilterOperatorOr, operands: []whereOperand{{expr: left}, {expr: right}}}
	}
	return left, nil
}

func (p *whereParser) and() (*whereExpr, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peekKeyword("and") {
		p.i++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = &whereExpr{op: ua.FilterOperatorAnd, operands: []whereOperand{{expr: left}, {expr: right}}}
	}
	return left, nil
}

func (p *whereParser) unary() (*whereExpr, error) {
	if p.peekKeyword("not") {
		p.i++
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &whereExpr{op: ua.FilterOperatorNot, operands: []whereOperand{{expr: e}}}, nil
	}
	return p.primary()
}

func (p *whereParser) expect(text string) error {
	if p.i >= len(p.toks) || p.toks[p.i].quoted || p.toks[p.i].text != text {
		return p.errorf("want %q", text)
	}
	p.i++
	return nil
}

func (p *whereParser) primary() (*whereExpr, error) {
	if p.i >= len(p.toks) {
		return nil, p.errorf("unexpected end")
	}
	t := p.toks[p.i]
	if !t.quoted && t.text == "(" {
		p.i++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	}
	if p.peekKeyword("OfType") {
		p.i++
		if err := p.expect("("); err != nil {
			return nil, err
		}
		// A node id may hold any character but ")": take the source text up to the closing parenthesis.
		if p.i >= len(p.toks) {
			return nil, p.errorf("want an event type node id")
		}
		start := p.toks[p.i].pos
		end := strings.IndexByte(p.src[start:], ')')
		if end < 0 {
			return nil, p.errorAt(len(p.src), "want \")\" after the node id")
		}
		ref, err := parseNodeRef(p.src[start:start+end], "")
		if err != nil {
			return nil, p.errorf("OfType: %v", err)
		}
		for p.i < len(p.toks) && p.toks[p.i].pos < start+end {
			p.i++
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return &whereExpr{op: ua.FilterOperatorOfType, operands: []whereOperand{{node: &ref}}}, nil
	}
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.i >= len(p.toks) || p.toks[p.i].quoted {
		return nil, p.errorf("want a comparison (== != < <= > >= like)")
	}
	var op ua.FilterOperator
	switch strings.ToLower(p.toks[p.i].text) {
	case "==":
		op = ua.FilterOperatorEquals
	case "!=":
		op = ua.FilterOperatorEquals // wrapped in Not below
	case "<":
		op = ua.FilterOperatorLessThan
	case "<=":
		op = ua.FilterOperatorLessThanOrEqual
	case ">":
		op = ua.FilterOperatorGreaterThan
	case ">=":
		op = ua.FilterOperatorGreaterThanOrEqual
	case "like":
		op = ua.FilterOperatorLike
	default:
		return nil, p.errorf("want a comparison (== != < <= > >= like), got %q", p.toks[p.i].text)
	}
	negate := p.toks[p.i].text == "!="
	p.i++
	right, err := p.operand()
	if err != nil {
		return nil, err
	}
	if left.field == nil && right.field == nil {
		return nil, p.errorf("a comparison needs an event field on one side")
	}
	// A number compared with Severity is sent as the field's type (UInt16), so servers compare it
	// without a conversion.
	for _, pair := range [][2]*whereOperand{{&left, &right}, {&right, &left}} {
		f, lit := pair[0], pair[1]
		if f.field != nil && f.fieldTy == id.BaseEventType && len(f.field) == 1 && f.field[0].Name == "Severity" && f.field[0].NamespaceIndex == 0 {
			switch v := lit.literal.(type) {
			case int32:
				if v < 0 || v > 1000 {
					return nil, p.errorAt(lit.pos, "Severity is 1..1000, got %d", v)
				}
				lit.literal = uint16(v)
			case int64, float64:
				return nil, p.errorAt(lit.pos, "Severity is an integer 1..1000, got %v", v)
			}
		}
	}
	e := &whereExpr{op: op, operands: []whereOperand{left, right}}
	if negate {
		e = &whereExpr{op: ua.FilterOperatorNot, operands: []whereOperand{{expr: e}}}
	}
	return e, nil
}

// operand parses a field, a literal or a node id.
func (p *whereParser) operand() (whereOperand, error) {
	if p.i >= len(p.toks) {
		return whereOperand{}, p.errorf("want a field or a value")
	}
	t := p.toks[p.i]
	o, err := p.operandOf(t)
	o.pos = t.pos
	return o, err
}

func (p *whereParser) operandOf(t whereToken) (whereOperand, error) {
	p.i++
	if t.quoted {
		return whereOperand{literal: t.text}, nil
	}
	switch strings.ToLower(t.text) {
	case "(", ")", "==", "!=", "<", "<=", ">", ">=", "and", "or", "not", "like":
		p.i--
		return whereOperand{}, p.errorf("want a field or a value, got %q", t.text)
	case "true":
		return whereOperand{literal: true}, nil
	case "false":
		return whereOperand{literal: false}, nil
	}
	if n, err := strconv.ParseInt(t.text, 10, 64); err == nil {
		if n >= math.MinInt32 && n <= math.MaxInt32 {
			return whereOperand{literal: int32(n)}, nil
		}
		return whereOperand{literal: n}, nil
	}
	if f, err := strconv.ParseFloat(t.text, 64); err == nil {
		return whereOperand{literal: f}, nil
	}
	if looksLikeNodeID(t.text) {
		ref, err := parseNodeRef(t.text, "")
		if err != nil {
			p.i--
			return whereOperand{}, p.errorf("%v", err)
		}
		return whereOperand{node: &ref}, nil
	}
	path, err := parseBrowsePath(t.text)
	if err != nil {
		p.i--
		return whereOperand{}, p.errorf("%v", err)
	}
	ty := uint32(id.BaseEventType)
	if path[0].NamespaceIndex == 0 {
		ty = standardFieldType(t.text)
	}
	return whereOperand{field: path, fieldTy: ty}, nil
}

func looksLikeNodeID(s string) bool {
	for _, p := range []string{"i=", "s=", "g=", "b=", "ns=", "nsu="} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// contentFilter builds the ContentFilter of a where clause for a session: the root element first, node
// ids resolved against its namespaces.
func (e *whereExpr) contentFilter(namespaces []string) (*ua.ContentFilter, error) {
	cf := &ua.ContentFilter{}
	if _, err := e.appendTo(cf, namespaces); err != nil {
		return nil, err
	}
	return cf, nil
}

// appendTo appends the element of e, then those of its sub-expressions, and returns e's index.
func (e *whereExpr) appendTo(cf *ua.ContentFilter, namespaces []string) (uint32, error) {
	idx := uint32(len(cf.Elements))
	el := &ua.ContentFilterElement{FilterOperator: e.op}
	cf.Elements = append(cf.Elements, el)
	for _, o := range e.operands {
		switch {
		case o.expr != nil:
			sub, err := o.expr.appendTo(cf, namespaces)
			if err != nil {
				return 0, err
			}
			el.FilterOperands = append(el.FilterOperands, ua.NewExtensionObject(&ua.ElementOperand{Index: sub}))
		case o.field != nil:
			el.FilterOperands = append(el.FilterOperands, ua.NewExtensionObject(
				simpleOperand(ua.NewNumericNodeID(0, o.fieldTy), o.field, ua.AttributeIDValue)))
		case o.node != nil:
			n, err := o.node.resolve(namespaces)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", o.node.text, err)
			}
			el.FilterOperands = append(el.FilterOperands, ua.NewExtensionObject(&ua.LiteralOperand{Value: ua.MustVariant(n)}))
		default:
			el.FilterOperands = append(el.FilterOperands, ua.NewExtensionObject(&ua.LiteralOperand{Value: ua.MustVariant(o.literal)}))
		}
	}
	return idx, nil
}
