package dlt645receiver

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// profile is a resolved identifier list: a user's (one edition) or a built-in one (both editions).
type profile struct {
	version      dlt645.Version
	versionSet   bool
	manufacturer string
	model        string
	identifiers  []IdentifierConfig
	byVersion    map[dlt645.Version][]IdentifierConfig
	report       device.ReportConfig
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

// profileSet is the built-in profiles and the user's, each user profile checked once on its own so
// that a broken profile is reported even when no meter uses it.
type profileSet struct {
	byName map[string]profile
	bad    map[string]bool // user profiles with errors (reported once, where defined)
	known  []string        // sorted names, for errors
}

func resolveProfiles(user map[string]ProfileConfig) (*profileSet, []error) {
	var errs []error
	ps := &profileSet{byName: builtinProfiles(), bad: map[string]bool{}}
	for _, name := range slices.Sorted(maps.Keys(user)) {
		p := user[name]
		prefix := fmt.Sprintf("profiles::%s: ", name)
		var perrs []error
		v := dlt645.V2007
		if p.Version != "" {
			var err error
			if v, err = dlt645.ParseVersion(p.Version); err != nil {
				perrs = append(perrs, fmt.Errorf("%sversion: %w", prefix, err))
			}
		}
		if len(p.Identifiers) == 0 {
			perrs = append(perrs, fmt.Errorf("%sidentifiers: a profile needs at least one identifier", prefix))
		}
		if len(perrs) == 0 {
			_, _, ierrs := buildReads(v, p.Identifiers, nil, prefix)
			perrs = append(perrs, ierrs...)
		}
		if err := p.Report.Validate(prefix + "report."); err != nil {
			perrs = append(perrs, err)
		}
		if len(perrs) > 0 {
			ps.bad[name] = true
			errs = append(errs, perrs...)
		}
		ps.byName[name] = profile{version: v, versionSet: p.Version != "", manufacturer: p.Manufacturer, model: p.Model, identifiers: p.Identifiers, report: p.Report}
	}
	ps.known = slices.Sorted(maps.Keys(ps.byName))
	return ps, errs
}

// lookup returns the profile a meter names (the zero profile for none), or why it cannot be used.
func (ps *profileSet) lookup(name, mprefix string) (profile, error) {
	if name == "" {
		return profile{}, nil
	}
	p, ok := ps.byName[name]
	switch {
	case !ok:
		return profile{}, fmt.Errorf("%sprofile: unknown %q (known: %s)", mprefix, name, strings.Join(ps.known, ", "))
	case ps.bad[name]:
		return profile{}, fmt.Errorf("%sprofile: %q has errors (reported above)", mprefix, name)
	}
	return p, nil
}
