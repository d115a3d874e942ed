package modbus

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

const profilesDir = "../../../distributions/otelcol-iiot/profiles"

func results(r *CheckResult) map[string]FieldResult {
	m := map[string]FieldResult{}
	for _, f := range r.Fields {
		m[f.Field.Name] = f
	}
	return m
}

// TestCheckShippedProfile checks the simulated DTSU666 against the shipped profile (found by name),
// with one register the device refuses: every other field reads plausibly, the refused one is
// excluded from the device entry, and the entry loads in the receiver.
func TestCheckShippedProfile(t *testing.T) {
	bank := modbussim.NewBank(3)
	m := &modbussim.DTSU666{Bank: bank, Unit: 3}
	m.E.ImportKWh = 4321
	m.Update(100, 1)
	bank.Fail(3, modbussim.Holding, 0x2044, 0x2045, modbus.ErrIllegalDataAddress) // frequency
	addr := startServer(t, bank)

	p, err := FindProfile("chint_dtsu666", []string{"/nonexistent", profilesDir})
	require.NoError(t, err)
	cfg := CheckConfig{Endpoint: endpoint(t, "tcp://"+addr), Unit: 3, Timeout: time.Second, Profile: p}
	res, err := Check(cfg)
	require.NoError(t, err)
	ok, exc, bad, failed := res.Counts()
	assert.Equal(t, [4]int{len(p.Fields) - 1, 1, 0, 0}, [4]int{ok, exc, bad, failed})
	f := results(res)
	assert.InDelta(t, m.E.Voltage[0], f["voltage_l1"].Value, 1e-3)
	assert.InDelta(t, m.E.ImportKWh*1000, f["energy_active_import"].Value, 10, "kWh register scaled to Wh")
	assert.Equal(t, 2, f["frequency"].Code)

	var out bytes.Buffer
	WriteCheck(&out, cfg, res)
	s := out.String()
	assert.Contains(t, s, "exclude_fields: [frequency]")
	assert.Contains(t, s, "EXCEPTION 2 (illegal data address): excluded below")
	rc := loadModbusYAML(t, s)
	require.Len(t, rc.Connections, 1)
	d := rc.Connections[0].Devices[0]
	assert.Equal(t, "chint_dtsu666", d.Profile)
	assert.Equal(t, 3, *d.UnitID)
}

// TestCheckWrongByteOrder: the same meter read with a profile whose byte order is wrong: the values
// are flagged implausible, not passed as readings.
func TestCheckWrongByteOrder(t *testing.T) {
	bank := modbussim.NewBank(3)
	m := &modbussim.DTSU666{Bank: bank, Unit: 3}
	m.E.ImportKWh = 4321
	m.Update(100, 1)
	addr := startServer(t, bank)

	src, err := os.ReadFile(filepath.Join(profilesDir, "chint-dtsu666.yaml"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "swapped.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(src), "byte_order: ABCD", "byte_order: DCBA", 1)), 0o600))
	p, err := FindProfile(path, nil)
	require.NoError(t, err)
	res, err := Check(CheckConfig{Endpoint: endpoint(t, "tcp://"+addr), Unit: 3, Timeout: time.Second, Profile: p})
	require.NoError(t, err)
	_, _, bad, _ := res.Counts()
	assert.Greater(t, bad, len(p.Fields)/2, "most fields read with the wrong byte order are implausible")
	assert.False(t, results(res)["voltage_l1"].Plausible)
}

func TestPlausible(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		ok   bool
	}{
		{230.4, "V", true}, {1e30, "V", false}, {math.NaN(), "V", false}, {math.Inf(-1), "W", false},
		{1.4e-41, "A", false}, {0, "A", true}, {-5, "Hz", false}, {50, "Hz", true}, {-300, "Cel", false},
		{123456789, "kWh", true}, {3e38, "kWh", false}, {0.95, "1", true}, {2e13, "widgets", false},
	} {
		ok, why := Plausible(tc.v, tc.unit)
		assert.Equal(t, tc.ok, ok, "%g %s: %s", tc.v, tc.unit, why)
	}
}

// TestCheckPymodbus checks a profile against Debian's pymodbus: every encoding decodes to the value the
// server holds, the absent register is an exception, and the entry loads.
func TestCheckPymodbus(t *testing.T) {
	addr := pymodbus(t)
	p, err := FindProfile("testdata/pymodbus-meter.yaml", nil)
	require.NoError(t, err)
	cfg := CheckConfig{Endpoint: endpoint(t, "tcp://"+addr), Unit: 1, Timeout: time.Second, Profile: p, DeviceID: "meter-1"}
	res, err := Check(cfg)
	require.NoError(t, err)
	f := results(res)
	assert.InDelta(t, 230.4, f["voltage"].Value, 1e-4)
	assert.InDelta(t, 49.98, f["frequency"].Value, 1e-4)
	assert.InDelta(t, 230.4, f["voltage_int"].Value, 1e-9)
	assert.InDelta(t, -15250, f["power"].Value, 1e-9)
	assert.InDelta(t, 1234567, f["energy"].Value, 1e-9)
	assert.Equal(t, KindException, f["missing"].Kind)
	var out bytes.Buffer
	WriteCheck(&out, cfg, res)
	assert.Contains(t, out.String(), "5 read plausible values, 1 raised exceptions")
	rc := loadModbusYAML(t, out.String())
	assert.Equal(t, []string{"missing"}, rc.Connections[0].Devices[0].ExcludeFields)
	assert.Equal(t, "meter-1", rc.Connections[0].Devices[0].ID)
}

func TestFindProfileErrors(t *testing.T) {
	_, err := FindProfile("no_such_profile", []string{profilesDir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "known: ")
	assert.Contains(t, err.Error(), "chint_dtsu666")

	path := filepath.Join(t.TempDir(), "two.yaml")
	require.NoError(t, os.WriteFile(path, []byte("profiles:\n  a: {fields: [{name: x, address: 0}]}\n  b: {fields: [{name: y, address: 1}]}\n"), 0o600))
	_, err = FindProfile(path, nil)
	require.ErrorContains(t, err, "holds a, b; pick one with --profile "+path+":NAME")
	p, err := FindProfile(path+":b", nil)
	require.NoError(t, err)
	assert.Equal(t, "b", p.Name)
}

// TestCheckSilentUnit: a unit that never answers fails after three reads, not after a timeout per field.
func TestCheckSilentUnit(t *testing.T) {
	bank := modbussim.NewBank(1)
	srv, err := modbussim.ListenRTUOverTCP("127.0.0.1:0", bank)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	p, err := FindProfile("chint_dtsu666", []string{profilesDir})
	require.NoError(t, err)
	_, err = Check(CheckConfig{Endpoint: endpoint(t, "rtuovertcp://"+srv.Addr()), Unit: 5, Timeout: 100 * time.Millisecond, Profile: p})
	require.ErrorContains(t, err, "unit 5 does not answer (3 reads timed out)")
}
