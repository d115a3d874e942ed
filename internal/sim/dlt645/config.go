package dlt645sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Config is a simulator set-up, as read from YAML by cmd/dlt645sim.
type Config struct {
	// Listen is the TCP address to serve on (e.g. 127.0.0.1:8899).
	Listen string `yaml:"listen"`
	// Serial is a serial device to serve on (e.g. one end of a socat pty pair).
	Serial *SerialSettings `yaml:"serial"`
	// Preamble is the number of FE bytes before each reply.
	Preamble int `yaml:"preamble"`
	// BaudRate paces the TCP line like a serial bus at this speed (0: no pacing).
	BaudRate int `yaml:"baud_rate"`
	// ResponseDelay is how long meters think before they answer.
	ResponseDelay time.Duration `yaml:"response_delay"`
	// AlignedCollisions overlays the answers of meters that answer at once bit for bit (default: each
	// later one a character behind).
	AlignedCollisions bool          `yaml:"aligned_collisions"`
	Noise             NoiseSettings `yaml:"noise"`
	Meters            []MeterConfig `yaml:"meters"`
}

// SerialSettings set up the simulator's serial device.
type SerialSettings struct {
	Device   string `yaml:"device"`
	BaudRate int    `yaml:"baud_rate"`
	Parity   string `yaml:"parity"`
}

// NoiseSettings put garbage on the line before replies.
type NoiseSettings struct {
	Probability float64 `yaml:"probability"`
	MaxBytes    int     `yaml:"max_bytes"`
	Seed        uint64  `yaml:"seed"`
}

// MeterConfig is one meter of the simulator.
type MeterConfig struct {
	Address string `yaml:"address"`
	// Version is 2007 (default) or 1997.
	Version string `yaml:"version"`
	// Values are numbers of catalogued identifiers ("00010000": 12345.67).
	Values map[string]float64 `yaml:"values"`
	// Raw are value bytes as hex, low byte first, before the 0x33 offset.
	Raw map[string]string `yaml:"raw"`
	// Errors make identifiers answer with an error word ("02800002": 2).
	Errors map[string]uint8 `yaml:"errors"`
	// MaxFrameData splits longer values into follow-up frames (default 200).
	MaxFrameData int `yaml:"max_frame_data"`
	// ClockOffset is how far the meter's clock is ahead.
	ClockOffset time.Duration `yaml:"clock_offset"`
	// TimeZone of the meter's clock (IANA name; default the local zone).
	TimeZone string `yaml:"time_zone"`
	// Off meters answer nothing.
	Off bool `yaml:"off"`
	// RefuseBlocks makes the meter answer block identifiers (…FF…) with an error word: it reads only
	// single identifiers, as many meters do.
	RefuseBlocks bool `yaml:"refuse_blocks"`
	// Animate makes power, voltage and current wander and energy grow.
	Animate bool `yaml:"animate"`
	// Records are catalogued records given as their fields in order, numbers and RFC 3339 times
	// ("01010000": ["12.3456", "2024-03-05T14:30:00+08:00"]: a maximum demand and when it occurred).
	Records map[string][]string `yaml:"records"`
	// SettlementDays are the meter's settlement days as DDhh ("0100": the 1st at 00:00), up to 3.
	SettlementDays []string `yaml:"settlement_days"`
	// ProfileInterval makes the meter record its load profile this often (e.g. 1m, 15m).
	ProfileInterval time.Duration `yaml:"profile_interval"`
}

// LoadConfig reads a YAML set-up.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

// ParseConfig reads a YAML set-up from bytes; unknown keys are errors.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("simulator config: %w", err)
	}
	return &c, nil
}

// Meters builds the meters of the set-up; the second result lists the ones
// to animate.
func (c *Config) BuildMeters() ([]*Meter, []*Meter, error) {
	var errs []error
	var meters, animated []*Meter
	seen := map[dlt645.Address]bool{}
	for i, mc := range c.Meters {
		prefix := fmt.Sprintf("meters[%d]: ", i)
		a, err := dlt645.ParseAddress(mc.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("%saddress: %w", prefix, err))
			continue
		}
		if seen[a] {
			errs = append(errs, fmt.Errorf("%saddress %s is used twice", prefix, a))
		}
		seen[a] = true
		v := dlt645.V2007
		if mc.Version != "" {
			if v, err = dlt645.ParseVersion(mc.Version); err != nil {
				errs = append(errs, fmt.Errorf("%sversion: %w", prefix, err))
				continue
			}
		}
		m := NewMeter(a, v)
		if mc.MaxFrameData > 0 {
			m.SetMaxData(mc.MaxFrameData)
		}
		loc := time.Local
		if mc.TimeZone != "" {
			if loc, err = time.LoadLocation(mc.TimeZone); err != nil {
				errs = append(errs, fmt.Errorf("%stime_zone: %w", prefix, err))
				loc = time.Local
			}
		}
		m.SetClock(mc.ClockOffset, loc)
		m.SetOff(mc.Off)
		m.SetRefuseBlocks(mc.RefuseBlocks)
		for _, k := range sortedKeys(mc.Values) {
			di, err := dlt645.ParseDI(v, k)
			if err == nil {
				err = m.Set(di, mc.Values[k])
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%svalues[%s]: %w", prefix, k, err))
			}
		}
		for _, k := range sortedKeys(mc.Raw) {
			di, err := dlt645.ParseDI(v, k)
			var b []byte
			if err == nil {
				b, err = hex.DecodeString(strings.ReplaceAll(mc.Raw[k], " ", ""))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%sraw[%s]: %w", prefix, k, err))
				continue
			}
			m.SetRaw(di, b)
		}
		for _, k := range sortedKeys(mc.Errors) {
			di, err := dlt645.ParseDI(v, k)
			if err != nil {
				errs = append(errs, fmt.Errorf("%serrors[%s]: %w", prefix, k, err))
				continue
			}
			m.SetError(di, dlt645.ErrorWord(mc.Errors[k]))
		}
		errs = append(errs, mc.applyRecords(m, v, prefix)...)
		meters = append(meters, m)
		if mc.Animate {
			animated = append(animated, m)
		}
	}
	if len(meters) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("meters: at least one meter is needed"))
	}
	return meters, animated, errors.Join(errs...)
}

// Options returns the line options of the set-up.
func (c *Config) Options() Options {
	o := Options{
		Preamble:         c.Preamble,
		ResponseDelay:    c.ResponseDelay,
		NoiseProbability: c.Noise.Probability,
		NoiseBytes:       c.Noise.MaxBytes,
		Seed:             c.Noise.Seed,

		AlignedCollisions: c.AlignedCollisions,
	}
	if c.BaudRate > 0 {
		s := dlt645.DefaultSerialConfig("")
		s.BaudRate = c.BaudRate
		o.CharTime = s.CharTime()
	}
	return o
}

// applyRecords stores the meter's records, settlement days and load-profile interval.
func (mc *MeterConfig) applyRecords(m *Meter, v dlt645.Version, prefix string) []error {
	var errs []error
	for _, k := range sortedKeys(mc.Records) {
		di, err := dlt645.ParseDI(v, k)
		var nums []float64
		var times []time.Time
		for _, f := range mc.Records[k] {
			if err != nil {
				break
			}
			if t, terr := time.Parse(time.RFC3339, f); terr == nil {
				times = append(times, t)
				continue
			}
			var x float64
			if _, serr := fmt.Sscanf(f, "%g", &x); serr != nil {
				err = fmt.Errorf("field %q: want a number or an RFC 3339 time", f)
				break
			}
			nums = append(nums, x)
		}
		if err == nil {
			err = m.SetRecord(di, nums, times)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%srecords[%s]: %w", prefix, k, err))
		}
	}
	if len(mc.SettlementDays) > 0 {
		var days []dlt645.SettlementDay
		for i, s := range mc.SettlementDays {
			b, err := hex.DecodeString(s)
			var d dlt645.SettlementDay
			if err == nil && len(b) == 2 {
				d, err = dlt645.ParseSettlementDay([]byte{b[1], b[0]})
			} else if err == nil {
				err = fmt.Errorf("want DDhh")
			}
			if err != nil || i >= 3 {
				errs = append(errs, fmt.Errorf("%ssettlement_days[%d] %q: want up to 3 days as DDhh (0100: the 1st at 00:00)", prefix, i, s))
				continue
			}
			days = append(days, d)
		}
		m.SetSettlementDays(days...)
	}
	if mc.ProfileInterval < 0 {
		errs = append(errs, fmt.Errorf("%sprofile_interval: must not be negative", prefix))
	} else if mc.ProfileInterval > 0 {
		m.SetProfileInterval(mc.ProfileInterval, 0, time.Now())
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
