package dlt645

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuiltinFormatsParse(t *testing.T) {
	for _, v := range []Version{V2007, V1997} {
		for _, e := range Builtin().Entries(v) {
			f, err := ParseFormat(e.Format.Pattern, e.Format.Signed)
			require.NoError(t, err, "%s %s", v, e.DI.Format(v))
			assert.Equal(t, f, e.Format)
			assert.NotEmpty(t, e.Name)
			if e.Kind.Yields() {
				for _, o := range e.Readings() {
					assert.NotEmpty(t, o.Metric, e.Name)
					assert.NotEmpty(t, o.Unit, e.Name)
					assert.True(t, o.Kind.Yields(), e.Name)
				}
			}
		}
	}
}

// Readings that share a metric name must agree on unit and kind, since they
// become one metric.
func TestMetricsAgree(t *testing.T) {
	type shape struct {
		unit string
		kind Kind
	}
	seen := map[string]shape{}
	for _, v := range []Version{V2007, V1997} {
		for _, e := range Builtin().Entries(v) {
			if !e.Kind.Yields() {
				continue
			}
			for _, o := range e.Readings() {
				s := shape{o.Unit, o.Kind}
				if old, ok := seen[o.Metric]; ok {
					assert.Equal(t, old, s, "%s %s %s", v, e.DI.Format(v), o.Metric)
				}
				seen[o.Metric] = s
			}
		}
	}
}

func TestCatalogEntries(t *testing.T) {
	tests := []struct {
		v      Version
		di     DI
		metric string
		unit   string
		format string
		signed bool
		kind   Kind
		attrs  []Attribute
	}{
		{V2007, 0x00000000, MetricCombinedActiveEnergy, "Wh", "XXXXXX.XX", true, Gauge, []Attribute{{"phase", "total"}, {"tariff", "total"}}},
		{V2007, 0x00010000, MetricActiveEnergy, "Wh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "import"}, {"phase", "total"}, {"tariff", "total"}}},
		{V2007, 0x00010300, MetricActiveEnergy, "Wh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "import"}, {"phase", "total"}, {"tariff", "3"}}},
		{V2007, 0x00020400, MetricActiveEnergy, "Wh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "export"}, {"phase", "total"}, {"tariff", "4"}}},
		{V2007, 0x00030000, MetricCombinedReactiveEnergy, "varh", "XXXXXX.XX", true, Gauge, []Attribute{{"combination", "1"}, {"phase", "total"}, {"tariff", "total"}}},
		{V2007, 0x00070000, MetricReactiveEnergy, "varh", "XXXXXX.XX", false, Sum, []Attribute{{"quadrant", "3"}, {"phase", "total"}, {"tariff", "total"}}},
		{V2007, 0x00290000, MetricActiveEnergy, "Wh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "import"}, {"phase", "B"}, {"tariff", "total"}}},
		{V2007, 0x02010100, MetricVoltage, "V", "XXX.X", false, Gauge, []Attribute{{"phase", "A"}}},
		{V2007, 0x02020300, MetricCurrent, "A", "XXX.XXX", true, Gauge, []Attribute{{"phase", "C"}}},
		{V2007, 0x02030000, MetricActivePower, "W", "XX.XXXX", true, Gauge, []Attribute{{"phase", "total"}}},
		{V2007, 0x02040200, MetricReactivePower, "var", "XX.XXXX", true, Gauge, []Attribute{{"phase", "B"}}},
		{V2007, 0x02050000, MetricApparentPower, "VA", "XX.XXXX", true, Gauge, []Attribute{{"phase", "total"}}},
		{V2007, 0x02060000, MetricPowerFactor, "1", "X.XXX", true, Gauge, []Attribute{{"phase", "total"}}},
		{V2007, 0x02800002, MetricFrequency, "Hz", "XX.XX", false, Gauge, nil},
		{V2007, 0x02800001, MetricCurrent, "A", "XXX.XXX", true, Gauge, []Attribute{{"phase", "N"}}},
		{V2007, 0x04000101, "", "", "YYMMDDWW", false, ClockPart, nil},
		{V2007, 0x04000102, "", "", "hhmmss", false, ClockPart, nil},
		{V1997, 0x9010, MetricActiveEnergy, "Wh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "import"}, {"phase", "total"}, {"tariff", "total"}}},
		{V1997, 0x9024, MetricActiveEnergy, "Wh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "export"}, {"phase", "total"}, {"tariff", "4"}}},
		{V1997, 0x9110, MetricReactiveEnergy, "varh", "XXXXXX.XX", false, Sum, []Attribute{{"direction", "import"}, {"phase", "total"}, {"tariff", "total"}}},
		{V1997, 0xB611, MetricVoltage, "V", "XXX", false, Gauge, []Attribute{{"phase", "A"}}},
		{V1997, 0xB622, MetricCurrent, "A", "XX.XX", false, Gauge, []Attribute{{"phase", "B"}}},
		{V1997, 0xB630, MetricActivePower, "W", "XX.XXXX", false, Gauge, []Attribute{{"phase", "total"}}},
		{V1997, 0xB640, MetricReactivePower, "var", "XX.XX", false, Gauge, []Attribute{{"phase", "total"}}},
		{V1997, 0xB650, MetricPowerFactor, "1", "X.XXX", false, Gauge, []Attribute{{"phase", "total"}}},
		{V1997, 0xC010, "", "", "YYMMDDWW", false, ClockPart, nil},
		{V1997, 0xC011, "", "", "hhmmss", false, ClockPart, nil},
	}
	for _, tt := range tests {
		e, ok := Builtin().Lookup(tt.v, tt.di)
		require.True(t, ok, "%s %s", tt.v, tt.di.Format(tt.v))
		name := tt.di.Format(tt.v) + " " + e.Name
		assert.Equal(t, tt.metric, e.Metric, name)
		assert.Equal(t, tt.unit, e.Unit, name)
		if strings.HasPrefix(tt.unit, "W") || strings.HasPrefix(tt.unit, "var") || tt.unit == "VA" {
			assert.Equal(t, ExpKilo, e.Exp, name+": the standard's k-unit read in the base unit")
		} else {
			assert.Zero(t, e.Exp, name)
		}
		assert.Equal(t, tt.format, e.Format.Pattern, name)
		assert.Equal(t, tt.signed, e.Format.Signed, name)
		assert.Equal(t, tt.kind, e.Kind, name)
		assert.Equal(t, tt.attrs, e.Attributes, name)
	}
	_, ok := Builtin().Lookup(V2007, 0x9010)
	assert.False(t, ok, "a 1997 identifier is not a 2007 one")
	_, ok = Builtin().Lookup(V2007, 0x0201FF00)
	assert.False(t, ok, "a block is not an entry")
}

func TestBlocks(t *testing.T) {
	tests := []struct {
		v       Version
		di      DI
		members []DI
	}{
		{V2007, 0x0201FF00, []DI{0x02010100, 0x02010200, 0x02010300}},
		{V2007, 0x0202FF00, []DI{0x02020100, 0x02020200, 0x02020300}},
		{V2007, 0x0203FF00, []DI{0x02030000, 0x02030100, 0x02030200, 0x02030300}},
		{V2007, 0x0206FF00, []DI{0x02060000, 0x02060100, 0x02060200, 0x02060300}},
		{V1997, 0xB61F, []DI{0xB611, 0xB612, 0xB613}},
		{V1997, 0xB63F, []DI{0xB630, 0xB631, 0xB632, 0xB633}},
	}
	for _, tt := range tests {
		m, ok := Builtin().Block(tt.v, tt.di)
		require.True(t, ok, tt.di.Format(tt.v))
		var got []DI
		for _, e := range m {
			got = append(got, e.DI)
		}
		assert.Equal(t, tt.members, got, tt.di.Format(tt.v))
	}
	m, ok := Builtin().Block(V2007, 0x0001FF00)
	require.True(t, ok)
	assert.Len(t, m, 64, "total and 63 tariffs")
	m, ok = Builtin().Block(V1997, 0x901F)
	require.True(t, ok)
	assert.Len(t, m, 15, "total and 14 tariffs")
	_, ok = Builtin().Block(V2007, 0x02010100)
	assert.False(t, ok)
	_, ok = Builtin().Block(V2007, 0x0280FF00)
	assert.False(t, ok, "no members")

	// A forward-energy block with a total and 4 tariffs.
	data := []byte{
		0x00, 0x10, 0x00, 0x00, // 10.00 total
		0x00, 0x01, 0x00, 0x00, // 1.00
		0x00, 0x02, 0x00, 0x00,
		0x00, 0x03, 0x00, 0x00,
		0x00, 0x04, 0x00, 0x00,
	}
	m, _ = Builtin().Block(V2007, 0x0001FF00)
	parts, err := SplitBlock(m, data)
	require.NoError(t, err)
	require.Len(t, parts, 5)
	for i, p := range parts {
		v, err := p.Entry.Format.Decode(p.Data)
		require.NoError(t, err)
		if i == 0 {
			assert.Equal(t, 10.0, v)
			assert.Equal(t, "total", p.Entry.Attr(AttrTariff))
		} else {
			assert.Equal(t, float64(i), v)
			assert.Equal(t, string(rune('0'+i)), p.Entry.Attr(AttrTariff))
		}
	}
	_, err = SplitBlock(m, data[:7])
	assert.ErrorIs(t, err, ErrSize)
	_, err = SplitBlock(m, nil)
	assert.ErrorIs(t, err, ErrSize)
	v, _ := Builtin().Block(V2007, 0x0201FF00)
	_, err = SplitBlock(v, make([]byte, 8))
	assert.ErrorIs(t, err, ErrSize, "more parts than the block has")
}
