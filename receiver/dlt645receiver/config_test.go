package dlt645receiver

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

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestConfigs(t *testing.T) {
	tests := []struct {
		name    string
		wantErr []string
	}{
		{name: ""},
		{name: "discover"},
		{name: "discover_bus"},
		{name: "demo"},
		{name: "discover_shared_bus", wantErr: []string{`buses[0].meters[0] "a": address: "discover" needs the meter to be alone on its bus (this bus has 2 meters)`}},
		{name: "unknown_identifier", wantErr: []string{`buses[0].meters[0] "a": identifiers[0] 04A00101: not in the DL/T 645-2007 catalogue: give format (e.g. XXX.XX) and metric (and unit, kind)`}},
		{name: "bad_values", wantErr: []string{
			`time_zone: unknown time zone "Mars/Olympus"`,
			`buses[0].baud_rate: 2500 is not supported`,
			`buses[0].parity: "mark" is not a parity (want even, odd or none)`,
			`buses[0].preamble: must be between 0 and 8 wake-up bytes, got 9`,
			`buses[0].meters[0] "a": address: address "12345678901234": want 1 to 12 decimal digits`,
			`buses[0].meters[0] "a": version: version "2021": want 2007 or 1997`,
			`buses[0].meters[0] "a": identifiers[0]: data identifier "0010000": want 8 hex digits for DL/T 645-2007`,
			`buses[0].meters[0] "a": identifiers[1] 02010100: format: format "XX.Y": want digits as X`,
			`buses[0].meters[1] "a": id: "a" is already used by buses[0].meters[0]`,
			`buses[0].meters[1] "a": address: AAAAAAAAAAAA is a broadcast or wildcard address, not a meter's`,
			`buses[0].meters[1] "a": profile: unknown "nope" (known: single_phase, three_phase)`,
			`buses[1].endpoint: unknown scheme "udp" in "udp://127.0.0.1:4001" (want serial, tcp or dtu)`,
			`buses[1].meters: at least one meter is required`,
		}},
		{name: "duplicate_series", wantErr: []string{
			`buses[0].meters[0] "a": identifiers[1] 0201FF00: metric electrical.voltage{phase=A} is already read by 02010100; give different attributes`,
			`buses[0].meters[0] "a": identifiers[2] 02020100: metric electrical.voltage: unit "A" and kind gauge differ from another identifier's ("V", gauge)`,
		}},
		{name: "half_clock", wantErr: []string{`identifiers: the meter clock needs both the date and the time identifier (04000101 and 04000102, or 0400010C)`}},
		{name: "no_buses", wantErr: []string{"buses: at least one bus with meters is required"}},
		{name: "dtu"},
		{name: "dtu_bad", wantErr: []string{
			`dtu.endpoint: "dtu://0.0.0.0:9000" must be host:port (e.g. 127.0.0.1:9000 or 0.0.0.0:9000), without a scheme`,
			`dtu.heartbeat: one byte is too short to tell from protocol data`,
			`dtu.idle_timeout: must be > 0`,
			`buses[0]: data_bits, parity and stop_bits are set by the serial server (or DTU) on dtu://; remove them`,
			`buses[1].endpoint: DTU "0A0B" is already the endpoint of buses[0] (one DTU is one serial line: put its meters on one bus)`,
			`buses[2].endpoint: registration.format is hex, so the DTU id must be hex bytes: "pv-east" is not hex bytes`,
			`buses[3].endpoint: "dtu://" must be dtu://<id>, the id the DTU registers with`,
		}},
		{name: "dtu_no_listener", wantErr: []string{"dtu.endpoint: required by the dtu:// buses: the host:port the DTUs dial (e.g. 127.0.0.1:9000)"}},
		{name: "dtu_unused", wantErr: []string{"dtu: no bus has a dtu://<id> endpoint; bind buses to DTU ids, or remove dtu.endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
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

func TestConfigResolved(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, buses, 2)

	serial := buses[0]
	assert.Equal(t, "serial", serial.scheme)
	assert.Equal(t, "/dev/ttyUSB0", serial.address)
	assert.Equal(t, dlt645.SerialConfig{Device: "/dev/ttyUSB0", BaudRate: 2400, DataBits: 8, Parity: "even", StopBits: 1}, serial.serial)
	assert.Equal(t, 11*time.Second/2400, serial.charTime)
	assert.Equal(t, 4, serial.preamble)
	assert.Equal(t, 4*serial.charTime, serial.gap, "4 character times")
	assert.Equal(t, 24*time.Hour, serial.timeSync)
	require.Len(t, serial.meters, 3)

	m1 := serial.meters[0]
	assert.Equal(t, device.Identity{
		ID: "meter-1", Protocol: device.ProtocolDLT645, Address: "serial:///dev/ttyUSB0/000000000001",
		Manufacturer: "Acme", Model: "DTSD-3",
		Attributes: map[string]string{"site": "plant-7", "dlt645.meter.address": "000000000001", "dlt645.version": "2007"},
	}, m1.identity)
	assert.Equal(t, device.PollConfig{Interval: 30 * time.Second, Jitter: 0.05, Timeout: time.Second, Retries: 2, HealthInterval: device.DefaultHealthInterval}, m1.poll)
	assert.Equal(t, "Asia/Shanghai", m1.location.String())
	require.Len(t, m1.reads, 6)
	assert.True(t, m1.reads[0].block)
	assert.Len(t, m1.reads[0].parts, 64, "total and 63 tariffs")
	custom := m1.reads[5]
	assert.Equal(t, dlt645.DI(0x04A00101), custom.di)
	require.Len(t, custom.parts, 1)
	assert.Equal(t, "acme.load.average", custom.parts[0].entry.Metric)
	assert.Equal(t, "kW", custom.parts[0].entry.Unit)
	assert.Equal(t, 3, custom.parts[0].entry.Format.Size)
	assert.False(t, m1.clock.enabled)

	m2 := serial.meters[1]
	assert.Equal(t, time.Minute, m2.poll.Interval)
	var dis []string
	for _, r := range m2.reads {
		dis = append(dis, r.di.Format(dlt645.V2007))
	}
	assert.Equal(t, []string{"0001FF00", "0002FF00", "0201FF00", "0202FF00", "0203FF00", "0206FF00", "02800002"}, dis,
		"three_phase without 0204FF00; the meter's 0202FF00 replaces the profile's in place")
	cur := m2.reads[3]
	require.Len(t, cur.parts, 3)
	assert.Equal(t, 40.0, cur.parts[1].scale)
	assert.Equal(t, []dlt645.Attribute{{Key: "phase", Value: "B"}, {Key: "ct", Value: "200/5"}}, cur.parts[1].entry.Attributes)
	assert.True(t, m2.clock.enabled)
	assert.Equal(t, dlt645.DIDate2007, m2.clock.date)

	assert.True(t, serial.meters[2].clock.enabled)

	tcp := buses[1]
	assert.Equal(t, "tcp", tcp.scheme)
	assert.Equal(t, "10.0.0.7:4001", tcp.address)
	assert.Equal(t, 2, tcp.preamble)
	assert.Equal(t, 50*time.Millisecond, tcp.gap)
	assert.Equal(t, 11*time.Second/1200, tcp.charTime, "the server's line speed stretches timeouts")
	old := tcp.meters[0]
	assert.Equal(t, dlt645.V1997, old.version)
	assert.Equal(t, "UTC", old.location.String())
	assert.Equal(t, dlt645.DI(0x9010), old.reads[0].di)
	assert.Equal(t, dlt645.DI(0xC010), old.clock.date)
}

func TestConfigDiscover(t *testing.T) {
	cfg, err := loadConfig(t, "discover")
	require.NoError(t, err)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	m := buses[0].meters[0]
	assert.True(t, m.discover)
	assert.Equal(t, "tcp://127.0.0.1:4001", m.identity.Address)
	assert.NotContains(t, m.identity.Attributes, "dlt645.meter.address")
	assert.Equal(t, 10*time.Millisecond, buses[0].gap)
}

// A bus with discover: resolves its template once; every meter found is that template at its address.
func TestConfigDiscoverBus(t *testing.T) {
	cfg, err := loadConfig(t, "discover_bus")
	require.NoError(t, err)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	ds := buses[0].discover
	require.NotNil(t, ds)
	assert.Equal(t, "flats", ds.id)
	assert.Equal(t, 8, ds.maxMeters)
	assert.Equal(t, 500, ds.maxFrames)
	assert.Equal(t, 24*time.Hour, ds.rescan)
	assert.Equal(t, time.Hour, ds.silence)
	assert.Equal(t, 30*time.Second, ds.template.poll.Interval)
	assert.Equal(t, 300*time.Millisecond, ds.template.poll.Timeout)
	listed, _ := dlt645.ParseAddress("210300000001")
	assert.Equal(t, map[dlt645.Address]bool{listed: true}, ds.listed)
	a, _ := dlt645.ParseAddress("000012345678")
	m := ds.meterAt(a, buses[0].endpoint)
	assert.Equal(t, "flat-000012345678", m.identity.ID)
	assert.Equal(t, map[string]string{"site": "block-a", "dlt645.meter.address": "000012345678", "dlt645.version": "2007"}, m.identity.Attributes)
	assert.NotContains(t, ds.template.identity.Attributes, "dlt645.meter.address", "the template is not changed by a meter found")
	assert.False(t, m.discover, "a meter found is polled at its address")
	require.Len(t, buses[0].meters, 1)
}

func TestConfigUnknownKey(t *testing.T) {
	cm := confmap.NewFromStringMap(map[string]any{
		"buses": []any{map[string]any{"endpoint": "tcp://127.0.0.1:1", "baudrate": 9600}},
	})
	err := cm.Unmarshal(createDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "baudrate")
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, device.NewDefaultSettings(), cfg.Settings)
	err := confmap.Validate(cfg)
	require.Error(t, err, "a receiver without buses has nothing to do")
}

// A meter that sets a poll key to 0 gets 0, not the receiver's non-zero value; a key left out is
// inherited.
func TestConfigLayeredPoll(t *testing.T) {
	cfg, err := loadConfig(t, "layers")
	require.NoError(t, err)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	got := map[string]device.PollConfig{}
	for _, m := range buses[0].meters {
		got[m.identity.ID] = m.poll
	}
	assert.Equal(t, map[string]device.PollConfig{
		"zero":    {Interval: 10 * time.Second, Jitter: 0, Timeout: 2 * time.Second, Retries: 0, HealthInterval: device.DefaultHealthInterval},
		"inherit": {Interval: 10 * time.Second, Jitter: 0.1, Timeout: 2 * time.Second, Retries: 1, HealthInterval: device.DefaultHealthInterval},
		"some":    {Interval: time.Minute, Jitter: 0.1, Timeout: 2 * time.Second, Retries: 3, HealthInterval: device.DefaultHealthInterval},
	}, got)
}

// confmap.Validate, as the collector runs it, reports each problem once.
func TestConfigReportsEachProblemOnce(t *testing.T) {
	_, err := loadConfig(t, "once")
	require.Error(t, err)
	want := []string{
		"poll.interval: must be > 0, got -1s",
		"poll.jitter: must be between 0 and 0.5 (a fraction of interval), got 0.9",
		"poll.retries: must be between 0 and 10, got 11",
		"breaker.failure_threshold: must be >= 0 (0 disables the breaker), got -1",
		"traces.success_sample_ratio: must be between 0 and 1, got 2",
		`buses[0].meters[0] "m": poll.timeout: must be > 0 (leave it out to inherit), got 0s`,
		`buses[0].meters[0] "m": poll.retries: must be between 0 and 10, got -1`,
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

// An explicit 0 survives marshalling: it is not dropped and then inherited when read back.
func TestConfigRoundTrip(t *testing.T) {
	for _, name := range []string{"", "layers"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadConfig(t, name)
			require.NoError(t, err)
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
}

// enabled: false keeps a meter validated but not polled; a bus whose meters are all disabled is not
// opened at all (no time sync broadcast either).
func TestConfigMeterDisabled(t *testing.T) {
	cfg, err := loadConfig(t, "disabled")
	require.NoError(t, err)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, buses, 1)
	require.Len(t, buses[0].meters, 1)
	assert.Equal(t, "on", buses[0].meters[0].identity.ID)
}

// One port is one bus: two buses naming one serial port or serial server are a validate error (at run
// time they would share one owner, but their meters belong under one bus, polled one at a time).
func TestConfigSamePortTwice(t *testing.T) {
	_, err := loadConfig(t, "same_port_twice")
	require.Error(t, err)
	assert.Equal(t, "buses[1].endpoint: /dev/ttyUSB0 is the port of buses[0] too (one bus per serial port or serial server: list every meter under one)\n"+
		"buses[3].endpoint: 10.0.0.1:4001 is the port of buses[2] too (one bus per serial port or serial server: list every meter under one)", err.Error())
}
