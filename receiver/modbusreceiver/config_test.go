package modbusreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      string
		wantErr []string
	}{
		{id: "modbus"},
		{id: "bad_byte_order", wantErr: []string{`connections[0].devices[0] "d": fields[0] "x": byte_order: unknown "ABDC" (want ABCD, CDAB, BADC, DCBA)`}},
		{id: "bad_type", wantErr: []string{`fields[0] "x": type: unknown "float128" (want int8, uint8, int16`}},
		{id: "overlap", wantErr: []string{`fields "a" and "b" overlap: holding 10–11 and 11–11`}},
		{id: "address_range", wantErr: []string{`fields[0] "x": address: 65535 (with register_offset) to 65538 is outside 0–65535`}},
		{id: "bad_url", wantErr: []string{`connections[0].endpoint: unknown scheme "serial" in "serial:/dev/ttyS0" (want tcp, rtuovertcp, tcp+tls, rtu, ascii, asciiovertcp or udp)`}},
		{id: "missing_id", wantErr: []string{`connections[0].devices[0]: id: required`}},
		{id: "unit_id", wantErr: []string{`connections[0].devices[0] "d": unit_id: must be 1 to 247, got 248`}},
		{id: "unknown_profile", wantErr: []string{`connections[0].devices[0] "d": profile: unknown "nope" (known: none defined)`}},
		{id: "tls_missing", wantErr: []string{`connections[0].tls: required for tcp+tls:// (ca_file, cert_file and key_file)`}},
		{id: "blocks_field_outside", wantErr: []string{
			`connections[0].devices[0] "d": fields[1] "b": holding 9–10 is not inside any of requests.blocks (holding 0–9, input 0–3); with explicit blocks every field must lie inside one`,
			`connections[0].devices[0] "d": fields[2] "c": coil 0 is not inside any of requests.blocks (holding 0–9, input 0–3)`,
			`connections[0].devices[1] "d2": fields[0] "x": holding 3–4 is not inside any of profile "q" requests.blocks (holding 0–3)`,
		}},
		{id: "blocks_bad", wantErr: []string{
			`requests.blocks: explicit blocks belong to a profile or a device`,
			`profiles::p: fields[0] "x": holding 4 is not inside any of requests.blocks (holding 0–1)`,
			`connections[0].devices[0] "d": requests.blocks[0]: count: must be between 1 and 125 registers, got 0`,
			`connections[0].devices[0] "d": requests.blocks[1]: count: must be between 1 and 125 registers, got 126`,
			`connections[0].devices[0] "d": requests.blocks[2]: count: must be between 1 and 2000 bits, got 2001`,
			`connections[0].devices[0] "d": requests.blocks[3]: table: unknown "registers" (want holding, input, coil or discrete)`,
			`connections[0].devices[0] "d": requests.blocks[4]: address and register: give one`,
			`connections[0].devices[0] "d": requests.blocks[5]: address: required`,
			`connections[0].devices[0] "d": requests.blocks[7]: overlaps requests.blocks[6] (holding 15–24 and holding 10–19); a register belongs to one block`,
			`connections[0].devices[0] "d": requests.blocks[8]: address: 65530 (with register_offset) to 65539 is outside 0–65535`,
			`connections[0].devices[1] "e": profile: "p" has errors (reported above)`,
		}},
		{id: "many", wantErr: []string{
			`poll.timeout: 5s is longer than the poll interval 1s`,
			`requests.max_registers: must be between 1 and 125, got 200`,
			`connections[0].endpoint: "tcp://127.0.0.1" must be tcp://host:port`,
			`connections[0]: data_bits, parity and stop_bits apply only to rtu:// and ascii:// endpoints`,
			`unit_id: must be 1 to 247, or 0 or 255 on tcp://, tcp+tls:// and udp://, got 300`,
			`fields[0] "x": length: a string needs length between 1 and 125 registers (max_registers), got 0`,
			`fields[0] "x": string_as: required for strings`,
			`fields[1] "x": name: "x" is used by another field of the device`,
			`fields[1] "x": register: 50001 is not a Modicon reference`,
			`fields[1] "x": kind: unknown "histogram" (want gauge or sum)`,
			`fields[2] "c": type: coil tables hold single bits: type must be bool, got "float32"`,
			`fields[3] "s": scale_factor: no field named "nope"`,
			`connections[0].devices[1] "d": id: "d" is already used by connections[0].devices[0]`,
			`connections[0].devices[1] "d": fields: the device has no fields (give a profile or fields)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			id := component.NewIDWithName(metadata.Type, tt.id)
			if tt.id == "modbus" {
				id = component.NewID(metadata.Type)
			}
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmapValidate(cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func confmapValidate(cfg *Config) error { return confmap.Validate(cfg) }

// The valid example resolves into what the keys say: profile, overrides, Modicon, offsets, defaults.
func TestResolveExample(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("modbus")
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	conns, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, conns, 2)
	meter := conns[0].devices[0]
	assert.Equal(t, "Eastron", meter.identity.Manufacturer)
	assert.Equal(t, "tcp://10.0.0.5:502/1", meter.identity.Address)
	assert.Equal(t, 4, meter.requests.MaxGap)
	assert.Equal(t, 5*time.Second, meter.poll.Interval)
	byName := map[string]fieldSpec{}
	for _, f := range meter.fields {
		byName[f.name] = f
	}
	assert.NotContains(t, byName, "phase_angle_l1")
	assert.Equal(t, map[string]string{"phase": "A", "feeder": "F1"}, byName["voltage_l1"].attributes)
	assert.Equal(t, TableInput, byName["voltage_l1"].table)
	assert.Equal(t, TableInput, byName["temperature"].table)
	assert.Equal(t, 800, byName["temperature"].address)
	assert.Equal(t, 0.1, byName["temperature"].conv.Factor)

	tank := conns[0].devices[1]
	assert.Equal(t, 30*time.Second, tank.poll.Interval)
	assert.Equal(t, time.Second, tank.poll.Timeout)
	assert.Equal(t, 60, tank.requests.MaxRegisters)
	assert.True(t, tank.requests.CloseAfterPoll)
	assert.Equal(t, 100, tank.fields[0].address)
	assert.Equal(t, OrderABCD, tank.fields[0].order, "the device's byte_order overrides the profile's")

	assert.Nil(t, tank.blocks, "no blocks: the reads are planned")
	pump := conns[0].devices[2]
	assert.Equal(t, 10*time.Millisecond, pump.requests.Pause)
	assert.Equal(t, []blockSpec{{TableInput, 0, 10}, {TableHolding, 100, 2}}, pump.blocks, "the profile's blocks, with the device's other request keys")
	plc := conns[0].devices[3]
	assert.Equal(t, []blockSpec{{TableHolding, 0, 10}, {TableInput, 99, 4}}, plc.blocks, "register_offset applies to blocks as to fields")
	assert.Equal(t, []block{
		{table: TableHolding, start: 0, count: 10, fields: []int{0, 1}, explicit: true},
		{table: TableInput, start: 99, count: 4, fields: []int{2}, explicit: true},
	}, planBlocks(plc.fields, plc.blocks))

	rtu := conns[1]
	assert.Equal(t, "/dev/ttyUSB0", rtu.address)
	assert.Equal(t, uint(1), rtu.parity)
	assert.Equal(t, 50*time.Millisecond, rtu.gap)
	assert.Equal(t, TypeBool, rtu.devices[0].fields[0].typ)
}

func TestUnknownKeyRejected(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	err := confmap.NewFromStringMap(map[string]any{"conections": []any{}}).Unmarshal(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "conections")
}

func TestModicon(t *testing.T) {
	for _, tc := range []struct {
		ref   int
		table Table
		addr  int
	}{
		{1, TableCoil, 0}, {9999, TableCoil, 9998}, {10001, TableDiscrete, 0}, {30001, TableInput, 0}, {30013, TableInput, 12},
		{40001, TableHolding, 0}, {49999, TableHolding, 9998}, {400001, TableHolding, 0}, {465536, TableHolding, 65535},
		{300001, TableInput, 0}, {100001, TableDiscrete, 0},
	} {
		table, addr, err := modicon(tc.ref)
		require.NoError(t, err, tc.ref)
		assert.Equal(t, tc.table, table, tc.ref)
		assert.Equal(t, tc.addr, addr, tc.ref)
	}
	for _, bad := range []int{0, 20001, 50001, 465537, -1} {
		_, _, err := modicon(bad)
		assert.Error(t, err, bad)
	}
}

func TestShippedProfilesValid(t *testing.T) {
	matches, err := filepath.Glob(profilesDir + "*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(matches), 3)
	for _, m := range matches {
		profiles, err := loadProfileFile(m)
		require.NoError(t, err, m)
		for name, p := range profiles {
			assert.NotEmpty(t, p.Document, "%s: profile %s names its document", m, name)
			_, errs := buildFields(p.Fields, p.ByteOrder, 0, newDefaultRequestSpec(), name+": ")
			assert.Empty(t, errs, "%s", m)
		}
	}
}

func loadNamed(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

// A device (or profile) that sets a key to 0 gets 0, not the non-zero value of the level above;
// a key left out is inherited, from the profile first.
func TestLayeredSettings(t *testing.T) {
	conns, err := loadNamed(t, "layers").resolve()
	require.NoError(t, err)
	byID := map[string]deviceSpec{}
	for _, d := range conns[0].devices {
		byID[d.identity.ID] = d
	}
	type want struct {
		retries      int
		jitter       float64
		pause        time.Duration
		remergeAfter time.Duration
		maxRegisters int
	}
	for _, tc := range []struct {
		id   string
		want want
	}{
		{"zero", want{retries: 0, jitter: 0, pause: 0, remergeAfter: 0, maxRegisters: 50}},
		{"inherit", want{retries: 1, jitter: 0.1, pause: 20 * time.Millisecond, remergeAfter: 30 * time.Minute, maxRegisters: 50}},
		{"receiver", want{retries: 1, jitter: 0.1, pause: 5 * time.Millisecond, remergeAfter: 10 * time.Minute, maxRegisters: 100}},
		{"profile_zero", want{retries: 1, jitter: 0.1, pause: 0, remergeAfter: 0, maxRegisters: 100}},
		{"device_over_profile_zero", want{retries: 3, jitter: 0.1, pause: time.Millisecond, remergeAfter: 0, maxRegisters: 100}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			d, ok := byID[tc.id]
			require.True(t, ok)
			got := want{d.poll.Retries, d.poll.Jitter, d.requests.Pause, d.requests.RemergeAfter, d.requests.MaxRegisters}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, 10*time.Second, d.poll.Interval)
			assert.Equal(t, 2*time.Second, d.poll.Timeout)
		})
	}
	// max_gap and close_after_poll were pointers already; they keep layering the same way.
	assert.Equal(t, 0, byID["zero"].requests.MaxGap)
	assert.False(t, byID["zero"].requests.CloseAfterPoll)
	assert.Equal(t, 4, byID["inherit"].requests.MaxGap)
	assert.True(t, byID["inherit"].requests.CloseAfterPoll)
	assert.Equal(t, 8, byID["receiver"].requests.MaxGap)
	assert.Equal(t, 0, byID["profile_zero"].requests.MaxGap)
	assert.False(t, byID["profile_zero"].requests.CloseAfterPoll)
	assert.Equal(t, 2, byID["device_over_profile_zero"].requests.MaxGap)
	// A field patch's internal: false exports a field the profile keeps internal.
	assert.False(t, byID["zero"].fields[1].internal)
	assert.True(t, byID["inherit"].fields[1].internal)
}

// confmap.Validate, as the collector runs it, reports each problem once: the receiver's Validate
// reports the settings, and the squashed device.Settings is not a Validator of its own.
func TestValidateReportsEachProblemOnce(t *testing.T) {
	err := confmap.Validate(loadNamed(t, "once"))
	require.Error(t, err)
	want := []string{
		"poll.interval: must be > 0, got -1s",
		"poll.jitter: must be between 0 and 0.5 (a fraction of interval), got 0.9",
		"poll.retries: must be between 0 and 10, got 11",
		"breaker.failure_threshold: must be >= 0 (0 disables the breaker), got -1",
		"traces.success_sample_ratio: must be between 0 and 1, got 2",
		"requests.max_registers: must be between 1 and 125, got 0",
		`connections[0].devices[0] "d": poll.interval: must be > 0 (leave it out to inherit), got 0s`,
		`connections[0].devices[0] "d": poll.retries: must be between 0 and 10, got -1`,
		`connections[0].devices[0] "d": requests.pause: must be >= 0, got -1s`,
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range want {
		n := 0
		for _, l := range lines {
			if l == w {
				n++
			}
		}
		assert.Equal(t, 1, n, "%q once in:\n%v", w, err)
	}
	assert.Len(t, lines, len(want), "no other message, none twice:\n%v", err)
}

// An explicit 0 survives marshalling (print-config, a remote config source): it is not dropped and
// then inherited when the config is read back.
func TestConfigRoundTrip(t *testing.T) {
	for _, name := range []string{"layers", "once"} {
		t.Run(name, func(t *testing.T) {
			cfg := loadNamed(t, name)
			conf := confmap.New()
			require.NoError(t, conf.Marshal(cfg))
			back := createDefaultConfig().(*Config)
			require.NoError(t, conf.Unmarshal(back))
			assert.Equal(t, cfg.health(), back.health(), "metrics round-trip")
			// The generated metric configs also note (unexported) that `enabled` was set, which
			// marshalling does: compare the rest.
			back.Metrics = cfg.Metrics
			assert.Equal(t, cfg, back)
		})
	}
	conf := confmap.New()
	require.NoError(t, conf.Marshal(createDefaultConfig()))
	back := createDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(back))
	def := createDefaultConfig().(*Config)
	assert.Equal(t, def.health(), back.health(), "metrics round-trip")
	back.Metrics = def.Metrics
	assert.Equal(t, def, back, "defaults round-trip")
}
