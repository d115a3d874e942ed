// Package tdigestprocessor computes sliding-window quantiles (P50, P90, P99,
// P99.9, ...) of selected metrics — gauges, sums and histograms — per series or
// per group of attributes, and emits them as a Summary and/or gauges on every
// slide of the window. See README.md.
//
//go:generate ../../.tools/mdatagen metadata.yaml
package tdigestprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor"
