package opcuareceiver

import (
	"context"
	"strings"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// browseNode is a node to browse, with its path below the browse root.
type browseNode struct {
	id   *ua.NodeID
	path string
}

// browseAll runs every browse entry and returns the variables found as readings. A root that cannot
// be resolved or browsed is reported and skipped; an error is returned only when the session broke.
func (r *opcuaReceiver) browseAll(ctx context.Context, s *session, p *device.Poll, q *device.Request) ([]*readingSpec, error) {
	var out []*readingSpec
	seen := map[string]bool{}
	series := map[string]bool{}
	for _, spec := range r.specs {
		series[seriesKey(spec.metric, spec.attrs)] = true
		// A configured node is read as configured: browsing it again would read it twice (and list it
		// twice among the bad nodes when it is Bad).
		if nid, err := spec.ref.resolve(s.namespaces); err == nil {
			seen[nid.String()] = true
		}
	}
	var sum statusSummary
	for _, b := range r.browse {
		root, err := b.ref.resolve(s.namespaces)
		if err != nil {
			sum.addNamed("BadNodeIdUnknown", true, b.ref.text)
			r.logger.Warn("Browse root cannot be resolved", zap.String("root", b.ref.text), zap.Error(err))
			continue
		}
		found, truncated, err := r.browseOne(ctx, s, b, root, seen, &sum)
		if err != nil {
			return nil, err
		}
		if truncated {
			r.logger.Warn("Browse stopped at max_nodes; raise browse.max_nodes or narrow name_filter",
				zap.String("root", b.ref.text), zap.Int("max_nodes", b.maxNodes))
			q.Attr("opcua.browse_truncated", true)
		}
		r.logger.Info("Browsed the server", zap.String("root", b.ref.text), zap.Int("variables", len(found)))
		for _, f := range found {
			key := seriesKey(f.metric, f.attrs)
			if series[key] {
				// Same name at the same path (or a configured node): the node id tells them apart.
				f.attrs[attrNodeID] = f.ref.text
				key = seriesKey(f.metric, f.attrs)
				if series[key] {
					continue
				}
			}
			series[key] = true
			out = append(out, f)
		}
	}
	sum.annotate(q, p)
	return out, nil
}

func (r *opcuaReceiver) browseOne(ctx context.Context, s *session, b *browseSpec, root *ua.NodeID, seen map[string]bool, sum *statusSummary) ([]*readingSpec, bool, error) {
	var out []*readingSpec
	level := []browseNode{{id: root}}
	visited := map[string]bool{root.String(): true}
	for depth := 1; depth <= b.maxDepth && len(level) > 0; depth++ {
		var next []browseNode
		for start := 0; start < len(level); start += s.maxBrowse {
			chunk := level[start:min(start+s.maxBrowse, len(level))]
			results, err := r.browseChunk(ctx, s, chunk)
			if err != nil {
				return nil, false, err
			}
			for i, res := range results {
				parent := chunk[i]
				if res == nil {
					continue
				}
				if isBad(res.StatusCode) {
					sum.add(res.StatusCode, parent.id.String())
					continue
				}
				for _, ref := range res.References {
					if ref == nil || ref.NodeID == nil || ref.NodeID.NodeID == nil || ref.BrowseName == nil {
						continue
					}
					if ref.ReferenceTypeID != nil && ref.ReferenceTypeID.Namespace() == 0 && ref.ReferenceTypeID.IntID() == id.HasProperty {
						continue // properties (EURange, EngineeringUnits …) describe a variable, they are not readings
					}
					nid := ref.NodeID.NodeID
					if ref.NodeID.HasNamespaceURI() {
						if resolved, err := (nodeRef{nsURI: ref.NodeID.NamespaceURI, ident: identOf(nid)}).resolve(s.namespaces); err == nil {
							nid = resolved
						}
					}
					key := nid.String()
					if visited[key] {
						continue
					}
					visited[key] = true
					name := ref.BrowseName.Name
					switch ref.NodeClass {
					case ua.NodeClassObject:
						next = append(next, browseNode{id: nid, path: joinPath(parent.path, name)})
					case ua.NodeClassVariable:
						if b.filter != nil && !b.filter.MatchString(name) {
							continue
						}
						if seen[key] {
							continue // already read through another node or browse
						}
						if len(out) >= b.maxNodes {
							return out, true, nil
						}
						seen[key] = true
						out = append(out, r.browsedSpec(b, nid, parent.path, name, s.namespaces))
					}
				}
			}
		}
		level = next
	}
	return out, false, nil
}

// browseChunk browses a batch of nodes and follows continuation points.
func (r *opcuaReceiver) browseChunk(ctx context.Context, s *session, nodes []browseNode) ([]*ua.BrowseResult, error) {
	req := &ua.BrowseRequest{NodesToBrowse: make([]*ua.BrowseDescription, len(nodes))}
	for i, n := range nodes {
		req.NodesToBrowse[i] = &ua.BrowseDescription{
			NodeID:          n.id,
			BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true,
			NodeClassMask:   uint32(ua.NodeClassObject | ua.NodeClassVariable),
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		}
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Poll.Timeout)
	defer cancel()
	resp, err := s.client.Browse(rctx, req)
	if err != nil {
		return nil, classify(err)
	}
	results := resp.Results
	if len(results) != len(nodes) {
		return nil, device.Errorf(device.ErrProtocol, "browse of %d nodes returned %d results", len(nodes), len(results))
	}
	for _, res := range results {
		for res != nil && len(res.ContinuationPoint) > 0 {
			nreq := &ua.BrowseNextRequest{ContinuationPoints: [][]byte{res.ContinuationPoint}}
			nresp, err := s.client.BrowseNext(rctx, nreq)
			if err != nil || len(nresp.Results) != 1 || nresp.Results[0] == nil {
				break // keep what was found; the server could not continue
			}
			res.References = append(res.References, nresp.Results[0].References...)
			res.ContinuationPoint = nresp.Results[0].ContinuationPoint
		}
	}
	return results, nil
}

// browsedSpec makes the reading of a browsed variable: metric <prefix><BrowseName>, attribute
// opcua.browse_path with the objects between the browse root and the variable.
func (r *opcuaReceiver) browsedSpec(b *browseSpec, nid *ua.NodeID, path, name string, namespaces []string) *readingSpec {
	ref := nodeRefFromExpanded(nid, namespaces)
	attrs := mergeAttrs(b.defaults.Attributes, nil)
	if attrs == nil {
		attrs = map[string]string{}
	}
	if path != "" {
		attrs[attrBrowsePath] = path
	}
	if r.cfg.IncludeNodeID {
		attrs[attrNodeID] = ref.text
	}
	unit := b.defaults.Unit
	kind := b.defaults.Kind
	if kind == "" {
		kind = device.KindGauge
	}
	return &readingSpec{
		ref:      ref,
		metric:   b.defaults.MetricPrefix + sanitizeName(name),
		unit:     unit,
		kind:     kind,
		attrs:    attrs,
		conv:     newConversion(device.Layer(1, b.defaults.Scale), device.Layer(0, b.defaults.Offset)),
		interval: b.defaults.Interval,
		group:    b.group,
		item:     b.defaults.MonitoredItemDefaults,
	}
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// sanitizeName keeps letters, digits, _ and .; anything else becomes _.
func sanitizeName(s string) string {
	var b strings.Builder
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '.', c >= '0' && c <= '9' && i > 0:
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
