package probe

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The probes write their YAML by hand rather than through a marshaller: the output is meant to be read
// and edited (one device or field per line, flow style, comments saying what was measured), and a
// marshaller would lose the comments and the layout.

var plainScalar = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)

// Q quotes s for YAML when it is not a safe plain scalar (or reads as a boolean or null).
func Q(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~":
		return strconv.Quote(s)
	}
	if plainScalar.MatchString(s) {
		return s
	}
	// A double-quoted YAML scalar accepts Go's escapes for printable text.
	return strconv.Quote(s)
}

// Num formats a float for YAML without exponent noise for ordinary values.
func Num(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Comment writes each line of text as a YAML comment.
func Comment(w io.Writer, format string, args ...any) {
	for _, line := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		if line == "" {
			fmt.Fprintln(w, "#")
			continue
		}
		fmt.Fprintln(w, "# "+line)
	}
}

// Map renders ordered key/value pairs as a YAML flow map; empty values are left out.
func Map(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		parts = append(parts, kv[i]+": "+kv[i+1])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// StringMap renders a map with sorted keys as a YAML flow map of quoted-as-needed strings.
func StringMap(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kv := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		kv = append(kv, Q(k), Q(m[k]))
	}
	return Map(kv...)
}

// List renders quoted-as-needed strings as a YAML flow list.
func List(items []string) string {
	if len(items) == 0 {
		return ""
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = Q(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ID turns a name into a device or field id: lower case, [a-z0-9_-] only.
func ID(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
