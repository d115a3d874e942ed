package opcuareceiver

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"
)

// nodeRef is a configured node id: by namespace index, or by namespace URI resolved against the server's
// NamespaceArray at every (re)connect (indexes can change when the server restarts).
type nodeRef struct {
	text  string // as configured (with the group's namespace applied), used in logs, spans and attributes
	nsURI string // "" when given by index
	ns    uint16
	ident string // "i=…", "s=…", "g=…" or "b=…"
}

// parseNodeRef parses ns=<index>;<id>, nsu=<uri>;<id>, or <id> alone (namespace defaultNSU when set, else
// namespace 0). <id> is i=<number>, s=<string>, g=<guid> or b=<base64>.
func parseNodeRef(s, defaultNSU string) (nodeRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nodeRef{}, fmt.Errorf("empty node id")
	}
	var r nodeRef
	switch {
	case strings.HasPrefix(s, "nsu="):
		i := strings.Index(s, ";")
		if i < 0 {
			return nodeRef{}, fmt.Errorf("%q: want nsu=<namespace URI>;{i,s,g,b}=<identifier>", s)
		}
		uri, err := url.PathUnescape(s[4:i]) // reserved characters in the URI are %-escaped (%3B for ;)
		if err != nil || uri == "" {
			return nodeRef{}, fmt.Errorf("%q: empty or badly escaped namespace URI", s)
		}
		r = nodeRef{nsURI: uri, ident: s[i+1:]}
	case strings.HasPrefix(s, "ns="):
		i := strings.Index(s, ";")
		if i < 0 {
			return nodeRef{}, fmt.Errorf("%q: want ns=<index>;{i,s,g,b}=<identifier>", s)
		}
		n, err := strconv.ParseUint(s[3:i], 10, 16)
		if err != nil {
			return nodeRef{}, fmt.Errorf("%q: namespace index must be 0..65535", s)
		}
		r = nodeRef{ns: uint16(n), ident: s[i+1:]}
	default:
		r = nodeRef{nsURI: defaultNSU, ident: s}
	}
	if len(r.ident) < 2 || r.ident[1] != '=' || !strings.ContainsRune("isgb", rune(r.ident[0])) {
		return nodeRef{}, fmt.Errorf("%q: identifier must be i=<number>, s=<string>, g=<guid> or b=<base64>", s)
	}
	// Check the identifier now, so a bad one is a config error and not a failure at every connect.
	if _, err := ua.ParseNodeID("ns=1;" + r.ident); err != nil {
		return nodeRef{}, fmt.Errorf("%q: %w", s, err)
	}
	if r.nsURI != "" {
		r.text = "nsu=" + escapeNSU(r.nsURI) + ";" + r.ident
	} else {
		r.text = "ns=" + strconv.Itoa(int(r.ns)) + ";" + r.ident
	}
	return r, nil
}

// resolve returns the node id with the namespace index the server uses now.
func (r nodeRef) resolve(namespaces []string) (*ua.NodeID, error) {
	ns := r.ns
	if r.nsURI != "" {
		found := false
		for i, u := range namespaces {
			if u == r.nsURI {
				ns, found = uint16(i), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("namespace %q is not in the server's NamespaceArray", r.nsURI)
		}
	}
	return ua.ParseNodeID("ns=" + strconv.Itoa(int(ns)) + ";" + r.ident)
}

// nodeRefFromExpanded turns a node id found by browsing into a nodeRef that names its namespace by URI,
// so that browsed series keep their identity when the server renumbers its namespaces.
func nodeRefFromExpanded(id *ua.NodeID, namespaces []string) nodeRef {
	ident := identOf(id)
	ns := id.Namespace()
	r := nodeRef{ns: ns, ident: ident}
	if int(ns) < len(namespaces) && ns != 0 {
		r.nsURI = namespaces[ns]
		r.text = "nsu=" + escapeNSU(r.nsURI) + ";" + ident
	} else {
		r.text = "ns=" + strconv.Itoa(int(ns)) + ";" + ident
	}
	return r
}

// identOf is the identifier part of a node id (i=…, s=…, g=…, b=…).
func identOf(n *ua.NodeID) string {
	s := n.String()
	if i := strings.Index(s, ";"); i >= 0 && strings.HasPrefix(s, "ns=") {
		return s[i+1:]
	}
	if len(s) < 2 || s[1] != '=' {
		return "s=" + s
	}
	return s
}

// escapeNSU escapes the one character that would break the nsu=<uri>;<id> syntax.
func escapeNSU(uri string) string { return strings.ReplaceAll(uri, ";", "%3B") }
