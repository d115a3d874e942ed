package device

import "strings"

// The electrical vocabulary: one name, unit and set of attribute values per electrical quantity,
// whatever the protocol (Modbus profiles, the DL/T 645 catalogue, OPC UA node lists). The table in
// README.md ("Electrical vocabulary") is checked against it; the tenant processor's schema enforces it
// (schema::vocabulary: electrical).

// VocabularyPrefix starts the name of every metric of the electrical vocabulary.
const VocabularyPrefix = "electrical."

// Attribute keys and values of the electrical vocabulary.
const (
	AttrPhase     = "phase"
	AttrDirection = "direction"
	AttrQuadrant  = "quadrant"

	PhaseTotal      = "total"
	DirectionImport = "import"
	DirectionExport = "export"
)

// Quantity is one metric of the electrical vocabulary.
type Quantity struct {
	Metric string
	Unit   string
	Kind   MetricKind
	// Phases are the allowed values of attribute phase (none: the quantity has no phase).
	Phases []string
	// Direction: the quantity may carry direction (import, export) or quadrant (1-4).
	Direction bool
}

var (
	phasesVoltage = []string{"A", "B", "C", "AB", "BC", "CA"}
	phasesCurrent = []string{"A", "B", "C", "N"}
	phasesPower   = []string{"A", "B", "C", PhaseTotal}
	phasesPhase   = []string{"A", "B", "C"}
	phasesTotal   = []string{PhaseTotal}
)

// Vocabulary lists the quantities of the electrical vocabulary. Records of the same quantity at a
// past moment add a suffix (SuffixSettled, SuffixFrozen) and keep its unit and attributes.
var Vocabulary = []Quantity{
	{Metric: "electrical.voltage", Unit: "V", Kind: KindGauge, Phases: phasesVoltage},
	{Metric: "electrical.current", Unit: "A", Kind: KindGauge, Phases: phasesCurrent},
	{Metric: "electrical.current.sum", Unit: "A", Kind: KindGauge},
	{Metric: "electrical.power.active", Unit: "W", Kind: KindGauge, Phases: phasesPower},
	{Metric: "electrical.power.reactive", Unit: "var", Kind: KindGauge, Phases: phasesPower},
	{Metric: "electrical.power.apparent", Unit: "VA", Kind: KindGauge, Phases: phasesPower},
	{Metric: "electrical.power_factor", Unit: "1", Kind: KindGauge, Phases: phasesPower},
	{Metric: "electrical.frequency", Unit: "Hz", Kind: KindGauge},
	{Metric: "electrical.phase_angle", Unit: "deg", Kind: KindGauge, Phases: phasesPhase},
	{Metric: "electrical.energy.active", Unit: "Wh", Kind: KindSum, Phases: phasesPower, Direction: true},
	{Metric: "electrical.energy.reactive", Unit: "varh", Kind: KindSum, Phases: phasesPower, Direction: true},
	{Metric: "electrical.energy.active.combined", Unit: "Wh", Kind: KindGauge, Phases: phasesPower},
	{Metric: "electrical.energy.reactive.combined", Unit: "varh", Kind: KindGauge, Phases: phasesPower},
	{Metric: "electrical.demand.active", Unit: "W", Kind: KindGauge, Phases: phasesTotal},
	{Metric: "electrical.demand.reactive", Unit: "var", Kind: KindGauge, Phases: phasesTotal},
	{Metric: "electrical.demand.apparent", Unit: "VA", Kind: KindGauge, Phases: phasesTotal},
	{Metric: "electrical.demand.max.active", Unit: "W", Kind: KindGauge, Phases: phasesTotal, Direction: true},
	{Metric: "electrical.demand.max.reactive", Unit: "var", Kind: KindGauge, Phases: phasesTotal, Direction: true},
	{Metric: "electrical.demand.max.apparent", Unit: "VA", Kind: KindGauge, Phases: phasesTotal, Direction: true},
	{Metric: "electrical.voltage.harmonic", Unit: "%", Kind: KindGauge, Phases: phasesPhase},
	{Metric: "electrical.current.harmonic", Unit: "%", Kind: KindGauge, Phases: phasesPhase},
}

// Suffixes of records: a quantity at a settlement day, or in a freeze (a gauge each, stamped with that
// moment).
const (
	SuffixSettled = ".settled"
	SuffixFrozen  = ".frozen"
)

var vocabulary = func() map[string]Quantity {
	m := map[string]Quantity{}
	for _, q := range Vocabulary {
		m[q.Metric] = q
	}
	return m
}()

// LookupQuantity finds a metric of the electrical vocabulary, a settled or frozen record of one
// included (as a gauge).
func LookupQuantity(metric string) (Quantity, bool) {
	if q, ok := vocabulary[metric]; ok {
		return q, true
	}
	for _, suf := range []string{SuffixSettled, SuffixFrozen} {
		if base, ok := strings.CutSuffix(metric, suf); ok {
			if q, ok := vocabulary[base]; ok {
				q.Metric, q.Kind = metric, KindGauge
				return q, true
			}
		}
	}
	return Quantity{}, false
}

// AllowedValues are the values attribute key may take on q's points (nil: any).
func (q Quantity) AllowedValues(key string) []string {
	switch key {
	case AttrPhase:
		return q.Phases
	case AttrDirection:
		if q.Direction {
			return directions
		}
	case AttrQuadrant:
		if q.Direction {
			return quadrants
		}
	}
	return nil
}

// Required are the attribute keys every point of q carries: phase, for a quantity that has phases (a
// device's own total is phase="total"; a point without a phase would be counted twice, or not at all, by
// a query that sums the phases or picks the total).
func (q Quantity) Required() []string {
	if q.Phases != nil {
		return requirePhase
	}
	return nil
}

var (
	requirePhase = []string{AttrPhase}
	directions   = []string{DirectionImport, DirectionExport}
	quadrants    = []string{"1", "2", "3", "4"}
)
