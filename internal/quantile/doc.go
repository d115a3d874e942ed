// Package quantile is the sliding-window quantile engine shared by the tdigest
// processor and the spanquantiles connector.
//
// A series keeps a ring of per-slide slots (window/slide of them, plus the slide
// that is currently filling). A slot keeps its values exactly — a plain
// []float64 — while it holds at most Settings.ExactLimit values; past that it is
// turned into a compact t-digest centroid list (github.com/influxdata/tdigest does
// the compression, one scratch digest per engine) and further values are batched
// and merged into it. At emit the slots of the window are combined without
// re-compressing them: their sorted centroids and exact values are interpolated
// together, so a window holding only exact slots yields exact quantiles and a
// digested window loses no accuracy to merging.
//
// The engine is not safe for concurrent use: its owner serialises calls.
package quantile // import "github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
