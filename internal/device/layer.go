package device

// Layered settings: a receiver sets defaults for its devices, a profile (a device model) may change
// them, and a device may change them again. A level that does not set a key inherits it from the
// level above; a level that sets it to 0 (retries: 0, jitter: 0, pause: 0) means 0. The config
// types of the profile and device levels therefore hold pointers (mapstructure leaves a pointer nil
// when the key is absent or null, and points it at the value otherwise, 0 included), and Layer
// resolves them. Keys whose zero value cannot be meant (a name, a unit, an enum such as kind or
// byte_order) stay plain values and are layered with LayerSet: there, empty means unset.

// Layer returns the value of the most specific level that sets it: the last non-nil of levels
// (ordered from general to specific, e.g. receiver, profile, device), or base when none does.
func Layer[T any](base T, levels ...*T) T {
	for i := len(levels) - 1; i >= 0; i-- {
		if levels[i] != nil {
			return *levels[i]
		}
	}
	return base
}

// LayerSet returns the value of the most specific level that is not the zero value, or base when
// none is: Layer for keys whose zero value means "not set" (strings, enums).
func LayerSet[T comparable](base T, levels ...T) T {
	var zero T
	for i := len(levels) - 1; i >= 0; i-- {
		if levels[i] != zero {
			return levels[i]
		}
	}
	return base
}

// Ptr returns a pointer to v, for setting a level in code and tests.
func Ptr[T any](v T) *T { return &v }
