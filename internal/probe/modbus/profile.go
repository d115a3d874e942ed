package modbus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Profile is a register map as in the receiver's profile files (profile_files: top-level profiles:).
// The probe reads the keys it needs to read and decode the fields; the receiver stays the judge of the
// file (its Validate), the probe only reports what it cannot read.
type Profile struct {
	Name         string  `yaml:"-"`
	File         string  `yaml:"-"` // absolute path of the file it came from
	Manufacturer string  `yaml:"manufacturer"`
	Model        string  `yaml:"model"`
	ByteOrder    string  `yaml:"byte_order"`
	Fields       []Field `yaml:"fields"`
}

// Field is one field of a profile.
type Field struct {
	Name          string            `yaml:"name"`
	Metric        string            `yaml:"metric"`
	Table         Table             `yaml:"table"`
	Address       *int              `yaml:"address"`
	Register      int               `yaml:"register"`
	Type          string            `yaml:"type"`
	Bit           *int              `yaml:"bit"`
	Byte          string            `yaml:"byte"`
	Length        int               `yaml:"length"`
	ByteOrder     string            `yaml:"byte_order"`
	Scale         *float64          `yaml:"scale"`
	Offset        *float64          `yaml:"offset"`
	ScaleFactor   string            `yaml:"scale_factor"`
	InvalidValues []int64           `yaml:"invalid_values"`
	Unit          string            `yaml:"unit"`
	Kind          string            `yaml:"kind"`
	Attributes    map[string]string `yaml:"attributes"`
	Internal      *bool             `yaml:"internal"`
}

// ProfileDirs are where a profile given by name is looked for: $OTELCOL_IIOT_CONFIG_DIR/profiles, then
// the packages' /etc/otelcol-iiot/profiles.
func ProfileDirs() []string {
	var dirs []string
	if d := os.Getenv("OTELCOL_IIOT_CONFIG_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "profiles"))
	}
	return append(dirs, "/etc/otelcol-iiot/profiles")
}

// LoadProfiles reads a profile file.
func LoadProfiles(path string) ([]*Profile, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: reading the profile file the user names is the point
	if err != nil {
		return nil, err
	}
	var file struct {
		Profiles map[string]*Profile `yaml:"profiles"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(file.Profiles) == 0 {
		return nil, fmt.Errorf("%s: no profiles (a profile file has a top-level `profiles:` map)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	out := make([]*Profile, 0, len(file.Profiles))
	for name, p := range file.Profiles {
		if p == nil {
			return nil, fmt.Errorf("%s: profile %q is empty", path, name)
		}
		p.Name, p.File = name, abs
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Profile) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// FindProfile resolves --profile: a file (holding one profile, or the one named by name), or the name
// of a profile in one of dirs' *.yaml files.
func FindProfile(spec string, dirs []string) (*Profile, error) {
	file, name := spec, ""
	if st, err := os.Stat(spec); err != nil || st.IsDir() {
		// FILE:NAME picks one profile of a file with several.
		if f, n, ok := strings.Cut(spec, ":"); ok {
			if _, err := os.Stat(f); err == nil {
				file, name = f, n
			}
		}
	}
	if _, err := os.Stat(file); err == nil {
		profiles, err := LoadProfiles(file)
		if err != nil {
			return nil, err
		}
		if name == "" && len(profiles) == 1 {
			return profiles[0], nil
		}
		var names []string
		for _, p := range profiles {
			if p.Name == name {
				return p, nil
			}
			names = append(names, p.Name)
		}
		return nil, fmt.Errorf("--profile: %s holds %s; pick one with --profile %s:NAME", file, strings.Join(names, ", "), file)
	}
	var known []string
	var errs []error
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, f := range files {
			profiles, err := LoadProfiles(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, p := range profiles {
				if p.Name == spec {
					return p, nil
				}
				known = append(known, p.Name)
			}
		}
	}
	if len(known) == 0 {
		known = append(known, "none found")
	}
	return nil, errors.Join(append([]error{fmt.Errorf("--profile: %q is neither a file nor a profile in %s (known: %s)",
		spec, strings.Join(dirs, ", "), strings.Join(known, ", "))}, errs...)...)
}

// AllProfiles loads every profile of the *.yaml files in dirs (a name defined twice: the first wins).
func AllProfiles(dirs []string) ([]*Profile, error) {
	var out []*Profile
	seen := map[string]bool{}
	var errs []error
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, f := range files {
			profiles, err := LoadProfiles(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, p := range profiles {
				if !seen[p.Name] {
					seen[p.Name] = true
					out = append(out, p)
				}
			}
		}
	}
	if len(out) == 0 {
		errs = append(errs, fmt.Errorf("no profiles in %s", strings.Join(dirs, ", ")))
	}
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// modicon converts a Modicon reference to a table and 0-based address (as the receiver does).
func modicon(ref int) (Table, int, error) {
	switch {
	case ref >= 1 && ref <= 9999:
		return Coil, ref - 1, nil
	case ref >= 10001 && ref <= 19999:
		return Discrete, ref - 10001, nil
	case ref >= 30001 && ref <= 39999:
		return Input, ref - 30001, nil
	case ref >= 40001 && ref <= 49999:
		return Holding, ref - 40001, nil
	case ref >= 100001 && ref <= 165536:
		return Discrete, ref - 100001, nil
	case ref >= 300001 && ref <= 365536:
		return Input, ref - 300001, nil
	case ref >= 400001 && ref <= 465536:
		return Holding, ref - 400001, nil
	}
	return "", 0, fmt.Errorf("register %d is not a Modicon reference", ref)
}

// Location returns the table and address of a field.
func (f *Field) Location() (Table, int, error) {
	switch {
	case f.Register != 0:
		return modicon(f.Register)
	case f.Address != nil:
		t := f.Table
		if t == "" {
			t = Holding
		}
		return t, *f.Address, nil
	}
	return "", 0, fmt.Errorf("field %q: no address or register", f.Name)
}

// DataType returns the field's type with the receiver's defaults.
func (f *Field) DataType(t Table) string {
	switch {
	case f.Type != "":
		return f.Type
	case t == Coil || t == Discrete:
		return "bool"
	}
	return "uint16"
}
