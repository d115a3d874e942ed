package modbusreceiver

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// ProfileConfig is a named, reusable register map of one device model.
type ProfileConfig struct {
	Manufacturer string `mapstructure:"manufacturer"`
	Model        string `mapstructure:"model"`
	// Document names the register documentation the map was taken from.
	Document string `mapstructure:"document"`
	// ByteOrder is the default byte/word order of the profile's multi-register fields.
	ByteOrder ByteOrder     `mapstructure:"byte_order"`
	Requests  RequestConfig `mapstructure:"requests"`
	Fields    []FieldConfig `mapstructure:"fields"`
	// Report changes the report-by-exception keys for the profile's fields.
	Report device.ReportConfig `mapstructure:"report"`
}

// profileSet is every profile of a receiver: its `profiles` and those of its `profile_files`, each
// checked once on its own so that a broken profile is reported even when no device uses it.
type profileSet struct {
	byName map[string]ProfileConfig
	origin map[string]string // where each profile is defined, for errors
	names  []string          // sorted
	bad    map[string]bool   // profiles with errors (reported once, where defined)
	// unread is set when profile_files were not read (Validate does no I/O): a name not found may
	// be in one of them, and is resolved when the receiver is created.
	unread bool
}

// loadProfiles gathers the profiles; readFiles reads profile_files (at creation), else they are left
// for then.
func (cfg *Config) loadProfiles(readFiles bool, defaults requestSpec) (*profileSet, []error) {
	var errs []error
	ps := &profileSet{byName: map[string]ProfileConfig{}, origin: map[string]string{}, bad: map[string]bool{}}
	for name, p := range cfg.Profiles {
		ps.byName[name] = p
		ps.origin[name] = fmt.Sprintf("profiles::%s", name)
	}
	if readFiles {
		errs = append(errs, ps.readFiles(cfg.ProfileFiles)...)
	} else {
		ps.unread = len(cfg.ProfileFiles) > 0
	}
	ps.names = slices.Sorted(maps.Keys(ps.byName))
	for _, name := range ps.names {
		if perrs := ps.byName[name].Validate(ps.origin[name]+": ", defaults); len(perrs) > 0 {
			ps.bad[name] = true
			errs = append(errs, perrs...)
		}
	}
	return ps, errs
}

// readFiles adds the profiles of the files; a name may be defined once.
func (ps *profileSet) readFiles(paths []string) []error {
	var errs []error
	for i, path := range paths {
		loaded, err := loadProfileFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("profile_files[%d] %q: %w", i, path, err))
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(loaded)) {
			if prev, ok := ps.origin[name]; ok {
				errs = append(errs, fmt.Errorf("profile_files[%d] %q: profile %q is already defined in %s", i, path, name, prev))
				continue
			}
			ps.byName[name] = loaded[name]
			ps.origin[name] = fmt.Sprintf("profile_files[%d]::%s", i, name)
		}
	}
	return errs
}

// Validate reports every problem of the profile on its own (prefix names it), its fields resolved
// over the receiver's request defaults.
func (p ProfileConfig) Validate(prefix string, defaults requestSpec) []error {
	var errs []error
	if err := p.ByteOrder.Validate(prefix); err != nil {
		errs = append(errs, err)
	}
	if err := p.Requests.Validate(prefix + "requests."); err != nil {
		errs = append(errs, err)
	}
	if err := p.Report.Validate(prefix + "report."); err != nil {
		errs = append(errs, err)
	}
	if len(p.Fields) == 0 {
		errs = append(errs, fmt.Errorf("%sfields: a profile needs at least one field", prefix))
	}
	req := defaults.over(p.Requests).clamped()
	specs, ferrs := buildFields(p.Fields, device.LayerSet(OrderABCD, p.ByteOrder), 0, req, prefix)
	errs = append(errs, ferrs...)
	if p.Requests.Blocks != nil {
		_, berrs := resolveBlocks(p.Requests.Blocks, 0, specs, prefix, "requests.blocks")
		errs = append(errs, berrs...)
	}
	return errs
}

// lookup returns the profile a device names. ok is false when the device cannot be resolved: the
// profile is unknown or broken (err says so), or it may be in a profile file not read yet (err nil).
func (ps *profileSet) lookup(name, dprefix string) (p ProfileConfig, ok bool, err error) {
	if name == "" {
		return ProfileConfig{}, true, nil
	}
	p, found := ps.byName[name]
	switch {
	case !found && ps.unread:
		return ProfileConfig{}, false, nil
	case !found:
		known := strings.Join(ps.names, ", ")
		if known == "" {
			known = "none defined"
		}
		return ProfileConfig{}, false, fmt.Errorf("%sprofile: unknown %q (known: %s)", dprefix, name, known)
	case ps.bad[name]:
		return ProfileConfig{}, false, fmt.Errorf("%sprofile: %q has errors (reported above)", dprefix, name)
	}
	return p, true, nil
}

func loadProfileFile(path string) (map[string]ProfileConfig, error) {
	data, err := os.ReadFile(path) //nolint:gosec // a profile file the operator configured
	if err != nil {
		return nil, err
	}
	ret, err := confmap.NewRetrievedFromYAML(data)
	if err != nil {
		return nil, err
	}
	conf, err := ret.AsConf()
	if err != nil {
		return nil, err
	}
	var file struct {
		Profiles map[string]ProfileConfig `mapstructure:"profiles"`
	}
	if err := conf.Unmarshal(&file); err != nil {
		return nil, err
	}
	if len(file.Profiles) == 0 {
		return nil, errors.New("no profiles: the file needs a top-level `profiles:` map")
	}
	return file.Profiles, nil
}

// mergeFields applies a device's fields over its profile's: a field named like a profile field patches
// it (keys set in the device win, attributes are merged); others are added.
func mergeFields(profile, own []FieldConfig, exclude []string, prefix string) ([]FieldConfig, []error) {
	var errs []error
	out := make([]FieldConfig, 0, len(profile)+len(own))
	index := map[string]int{}
	for _, f := range profile {
		index[f.Name] = len(out)
		out = append(out, f)
	}
	patched := map[string]bool{}
	for _, f := range own {
		j, ok := index[f.Name]
		if !ok || f.Name == "" || patched[f.Name] {
			// a new field (a second patch of the same name is reported as a duplicate)
			out = append(out, f)
			continue
		}
		patched[f.Name] = true
		out[j] = patchField(out[j], f)
	}
	for i, name := range exclude {
		j, ok := index[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%sexclude_fields[%d]: no field named %q", prefix, i, name))
			continue
		}
		out[j].Skip = true
	}
	kept := out[:0]
	for _, f := range out {
		if !f.Skip {
			kept = append(kept, f)
		}
	}
	return kept, errs
}

// patchField applies the keys a device's field sets over its profile's field of the same name.
func patchField(base, p FieldConfig) FieldConfig {
	if p.Register != 0 {
		base.Register, base.Address, base.Table = p.Register, nil, ""
	}
	if p.Address != nil {
		base.Address, base.Register = p.Address, 0
	}
	base.Metric = device.LayerSet(base.Metric, p.Metric)
	base.Description = device.LayerSet(base.Description, p.Description)
	base.Table = device.LayerSet(base.Table, p.Table)
	base.Type = device.LayerSet(base.Type, p.Type)
	base.Bit = device.LayerSet(base.Bit, p.Bit)
	base.Byte = device.LayerSet(base.Byte, p.Byte)
	base.Length = device.LayerSet(base.Length, p.Length)
	base.ByteOrder = device.LayerSet(base.ByteOrder, p.ByteOrder)
	base.Scale = device.LayerSet(base.Scale, p.Scale)
	base.Offset = device.LayerSet(base.Offset, p.Offset)
	base.ScaleFactor = device.LayerSet(base.ScaleFactor, p.ScaleFactor)
	if p.InvalidValues != nil {
		base.InvalidValues = p.InvalidValues
	}
	base.Unit = device.LayerSet(base.Unit, p.Unit)
	base.Kind = device.LayerSet(base.Kind, p.Kind)
	base.StringAs = device.LayerSet(base.StringAs, p.StringAs)
	base.Attribute = device.LayerSet(base.Attribute, p.Attribute)
	if len(p.Attributes) > 0 {
		merged := maps.Clone(base.Attributes)
		if merged == nil {
			merged = make(map[string]string, len(p.Attributes))
		}
		maps.Copy(merged, p.Attributes)
		base.Attributes = merged
	}
	base.Skip = base.Skip || p.Skip
	base.Internal = device.LayerSet(base.Internal, p.Internal)
	base.Report = base.Report.Over(p.Report)
	return base
}
