package modbus

import (
	"bytes"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/faultproxy"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

func best(t *testing.T, r *FindResult) Candidate {
	t.Helper()
	require.NotEmpty(t, r.Candidates)
	return r.Candidates[0]
}

// TestFind plants one value in several encodings on a simulated device with a refused gap and finds
// each encoding as the best candidate of its table.
func TestFind(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 100, f32(230.4)...)                          // float32 ABCD
	bank.SetRegisters(1, modbussim.Input, 10, 2304)                                      // uint16, 0.1 V
	bank.SetRegisters(1, modbussim.Holding, 300, 0x5678, 0x1234)                         // uint32 CDAB = 0x12345678
	bank.SetRegisters(1, modbussim.Holding, 400, 0x9a99, 0x6643)                         // float32 DCBA 230.6 (0x4366999a)
	bank.Fail(1, modbussim.Holding, 150, 160, modbus.ErrIllegalDataAddress)              // a gap the device refuses
	bank.SetRegisters(1, modbussim.Holding, 161, modbussim.Uint32Regs(uint32(50000))...) // after the gap: 50.000 Hz in 0.001
	addr := startServer(t, bank)
	cfg := FindConfig{Endpoint: endpoint(t, "tcp://"+addr), Unit: 1, Timeout: time.Second, From: 0, To: 500}

	find := func(v, tol float64, tables ...Table) *FindResult {
		c := cfg
		c.Value, c.Tolerance, c.Tables = v, tol, tables
		r, err := Find(c)
		require.NoError(t, err)
		return r
	}
	r := find(230.4, DefaultTolerance("230.4", 230.4), Holding, Input)
	assert.Equal(t, Candidate{Table: Holding, Address: 100, Type: "float32", Order: "ABCD", Scale: 1}, strip(best(t, r)))
	assert.Equal(t, 11, r.Refused[Holding], "the refused gap is read around, register by register")
	assert.Equal(t, 501-11, r.Read[Holding])

	r = find(230.4, 0.05, Input)
	assert.Equal(t, Candidate{Table: Input, Address: 10, Type: "uint16", Order: "ABCD", Scale: 0.1}, strip(best(t, r)))

	r = find(float64(0x12345678), 0.5, Holding)
	assert.Equal(t, Candidate{Table: Holding, Address: 300, Type: "uint32", Order: "CDAB", Scale: 1}, strip(best(t, r)))

	r = find(230.6, 0.01, Holding)
	assert.Equal(t, Candidate{Table: Holding, Address: 400, Type: "float32", Order: "DCBA", Scale: 1}, strip(best(t, r)))

	// 50000 in a uint32 has a high word of 0: a uint16 in the low word reads the same. Both are offered,
	// and the report says the reading is ambiguous.
	r = find(50, 0.001, Holding)
	assert.Equal(t, Candidate{Table: Holding, Address: 162, Type: "uint16", Order: "ABCD", Scale: 0.001}, strip(best(t, r)))
	assert.Contains(t, stripAll(r.Candidates[:3]), Candidate{Table: Holding, Address: 161, Type: "uint32", Order: "ABCD", Scale: 0.001})
	var amb bytes.Buffer
	WriteFind(&amb, FindConfig{Endpoint: cfg.Endpoint, Unit: 1, Value: 50, Tables: []Table{Holding}}, r)
	assert.Contains(t, amb.String(), "ambiguous")

	// The printed entry loads, with the best candidate as the field.
	c := cfg
	c.Value, c.Tolerance, c.Tables, c.Name, c.UnitName, c.Max = 230.4, 0.05, []Table{Holding, Input}, "voltage_l1", "V", 5
	r, err := Find(c)
	require.NoError(t, err)
	var out bytes.Buffer
	WriteFind(&out, c, r)
	rc := loadModbusYAML(t, out.String())
	fields := rc.Connections[0].Devices[0].Fields
	require.Len(t, fields, 1, out.String())
	assert.Equal(t, "voltage_l1", fields[0].Name)
	assert.Equal(t, 100, *fields[0].Address)
	assert.Equal(t, "V", fields[0].Unit)
	assert.Contains(t, out.String(), "        # - {name: voltage_l1, table: input, address: 10, type: uint16, scale: 0.1, unit: V}  # 2. reads 230.4")
}

func stripAll(cs []Candidate) []Candidate {
	var out []Candidate
	for _, c := range cs {
		out = append(out, strip(c))
	}
	return out
}

func strip(c Candidate) Candidate {
	return Candidate{Table: c.Table, Address: c.Address, Type: c.Type, Order: c.Order, Scale: c.Scale}
}

// TestFindPymodbus finds values in Debian's pymodbus, whose sparse map refuses every register it does
// not hold.
func TestFindPymodbus(t *testing.T) {
	addr := pymodbus(t)
	cfg := FindConfig{Endpoint: endpoint(t, "tcp://"+addr), Unit: 1, Timeout: time.Second, From: 90, To: 160, Tables: []Table{Holding}}
	for _, tc := range []struct {
		text string
		v    float64
		want Candidate
	}{
		{"49.98", 49.98, Candidate{Table: Holding, Address: 110, Type: "float32", Order: "CDAB", Scale: 1}},
		{"1234.567", 1234.567, Candidate{Table: Holding, Address: 140, Type: "uint32", Order: "CDAB", Scale: 0.001}},
		{"-15.25", -15.25, Candidate{Table: Holding, Address: 131, Type: "int16", Order: "ABCD", Scale: 0.001}}, // int32 at 130 (0xFFFF, 0xC46E) too
	} {
		c := cfg
		c.Value, c.Tolerance = tc.v, DefaultTolerance(tc.text, tc.v)
		r, err := Find(c)
		require.NoError(t, err)
		assert.Equal(t, tc.want, strip(best(t, r)), tc.text)
		assert.Equal(t, 9, r.Read[Holding], "the registers pymodbus holds, read around the refused ones")
	}
}

func TestDefaultTolerance(t *testing.T) {
	assert.InDelta(t, 0.05+0.005*230.4, DefaultTolerance("230.4", 230.4), 1e-12)
	assert.InDelta(t, 0.5+0.005*50, DefaultTolerance("50", 50), 1e-12)
}

// TestFindSilentBlock: a device that does not answer reads of one block (a gap it lacks) is searched
// around it; a device that answers nothing is an error, not an empty search.
func TestFindSilentBlock(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 130, f32(49.95)...)
	proxy, err := faultproxy.New(startServer(t, bank), faultproxy.WithFramer(faultproxy.MBAPFrames))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.Inject(faultproxy.Truncate(0)) // the first read (holding 0-124) goes unanswered
	cfg := FindConfig{Endpoint: endpoint(t, "tcp://"+proxy.Addr()), Unit: 1, Timeout: 200 * time.Millisecond, Value: 49.95, Tolerance: 0.001,
		Tables: []Table{Holding}, From: 0, To: 200}
	r, err := Find(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"holding 0-124 (timeout)"}, r.Unanswered)
	assert.Equal(t, Candidate{Table: Holding, Address: 130, Type: "float32", Order: "ABCD", Scale: 1}, strip(best(t, r)))

	proxy.SetPolicy(func() faultproxy.Fault { return faultproxy.Truncate(0) })
	cfg.To = 100
	_, err = Find(cfg)
	require.ErrorContains(t, err, "unit 1 does not answer reads of holding 0-100")
}
