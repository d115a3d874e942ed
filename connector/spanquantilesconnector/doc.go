// Package spanquantilesconnector turns spans into sliding-window quantiles of
// their durations (P50, P90, P99, P99.9, ...) per service.name, span name,
// kind, status and configured dimensions, with the engine of the tdigest
// processor. See README.md.
//
//go:generate ../../.tools/mdatagen metadata.yaml
package spanquantilesconnector // import "github.com/otelcol-iiot/otelcol-iiot/connector/spanquantilesconnector"
