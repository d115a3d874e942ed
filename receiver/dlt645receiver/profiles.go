package dlt645receiver

import "github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"

// profile is a resolved identifier list: a user's (one edition) or a built-in one (both editions).
type profile struct {
	version      dlt645.Version
	versionSet   bool
	manufacturer string
	model        string
	identifiers  []IdentifierConfig
	byVersion    map[dlt645.Version][]IdentifierConfig
}

func (p profile) identifiersFor(v dlt645.Version) []IdentifierConfig {
	if p.byVersion != nil {
		return p.byVersion[v]
	}
	return p.identifiers
}

func idents(dis ...string) []IdentifierConfig {
	out := make([]IdentifierConfig, len(dis))
	for i, d := range dis {
		out[i] = IdentifierConfig{DI: d}
	}
	return out
}

// builtinProfiles are the identifier lists every DL/T 645 meter of the kind should answer. A user
// profile of the same name replaces one.
func builtinProfiles() map[string]profile {
	return map[string]profile{
		"single_phase": {byVersion: map[dlt645.Version][]IdentifierConfig{
			dlt645.V2007: idents(
				"00010000", "00020000", // forward and reverse active energy, total
				"02010100", "02020100", // voltage and current
				"02030000", "02060000", // active power and power factor, total
				"02800002",             // frequency
				"04000101", "04000102", // date and time: clock drift
			),
			dlt645.V1997: idents("9010", "9020", "B611", "B621", "B630", "B650", "C010", "C011"),
		}},
		"three_phase": {byVersion: map[dlt645.Version][]IdentifierConfig{
			dlt645.V2007: idents(
				"0001FF00", "0002FF00", // forward and reverse active energy: total and tariffs
				"0201FF00", "0202FF00", // voltages and currents of A, B, C
				"0203FF00", "0204FF00", // active and reactive power: total, A, B, C
				"0206FF00", // power factor: total, A, B, C
				"02800002", // frequency
				"04000101", "04000102",
			),
			dlt645.V1997: idents("901F", "902F", "B61F", "B62F", "B63F", "B64F", "B65F", "C010", "C011"),
		}},
	}
}
