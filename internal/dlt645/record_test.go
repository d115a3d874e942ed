package dlt645

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var cst = time.FixedZone("CST", 8*3600)

func TestParseRecordFormats(t *testing.T) {
	f, err := ParseFormat("XX.XXXX,YYMMDDhhmm", false)
	require.NoError(t, err)
	assert.Equal(t, Record, f.Kind)
	assert.Equal(t, 8, f.Size)
	require.Len(t, f.Fields, 2)
	assert.Equal(t, Number, f.Fields[0].Kind)
	assert.Equal(t, Minute, f.Fields[1].Kind)

	f, err = ParseFormat("YYMMDDhhmmss,NNNNNNNN,*40", false)
	require.NoError(t, err)
	assert.Equal(t, 50, f.Size, "programming record: time, operator, 10 identifiers")

	f, err = ParseFormat("YYMMDDhhmmss,*", false)
	require.NoError(t, err)
	assert.True(t, f.Open)
	assert.Equal(t, 6, f.Size)

	s, err := ParseFormat("XX.XXXX,YYMMDDhhmm", true)
	require.NoError(t, err)
	assert.True(t, s.Fields[0].Signed)
	assert.False(t, s.Fields[1].Signed, "a clock field is never signed")

	for _, bad := range []string{"XX.XXXX,", ",YYMMDDhhmm", "*,XX", "XX,*0", "XX,*x", "YYMMDDhhmm"} {
		_, err := ParseFormat(bad, false)
		if bad == "YYMMDDhhmm" {
			assert.NoError(t, err)
			continue
		}
		assert.Error(t, err, bad)
	}
}

// A reply to 01010000 (forward active maximum demand, total, current period): 12.3456 kW at
// 2024-03-05 14:30, worked out by hand: value 56 34 12, time mm hh DD MM YY = 30 14 05 03 24, each
// +33, checksum 16E (header) + 372 (data) = 4E0.
func TestDemandRecordFrame(t *testing.T) {
	b := unhex(t, "68 01 00 00 00 00 00 68 91 0C 33 33 34 34 89 67 45 63 47 38 36 57 E0 16")
	fr, n, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	req := ReadRequest(V2007, mustAddr(t, "000000000001"), 0x01010000)
	r, err := ParseReadReply(V2007, req, fr)
	require.NoError(t, err)

	e, ok := Builtin().Lookup(V2007, 0x01010000)
	require.True(t, ok)
	assert.Equal(t, MetricMaxDemandActive, e.Metric)
	assert.Equal(t, "W", e.Unit)
	assert.Equal(t, ExpKilo, e.Exp)
	assert.Equal(t, StampField, e.Stamp)
	assert.Equal(t, []Attribute{{AttrDirection, "import"}, {AttrPhase, "total"}, {AttrTariff, "total"}}, e.Attributes)
	fields, err := e.Format.DecodeRecord(r.Value)
	require.NoError(t, err)
	assert.Equal(t, 12.3456, fields[0].Number)
	at, err := fields[e.TimeField].Clock.Time(cst)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 3, 5, 14, 30, 0, 0, cst), at)

	back, err := e.Format.EncodeRecord([]Field{{Number: 12.3456}, {}}, []time.Time{{}, at})
	require.NoError(t, err)
	assert.Equal(t, r.Value, back)
	again, err := ReadResponse(V2007, fr.Address, 0x01010000, back, false).Encode(0)
	require.NoError(t, err)
	assert.Equal(t, b, again)

	// A demand block: total and tariffs, 8 bytes each.
	m, ok := Builtin().Block(V2007, 0x0101FF00)
	require.True(t, ok)
	assert.Len(t, m, 64)
	parts, err := SplitBlock(m, append(append([]byte(nil), r.Value...), r.Value...))
	require.NoError(t, err)
	assert.Equal(t, "1", parts[1].Entry.Attr(AttrTariff))

	// A period without a maximum yet: zero time, an empty record.
	fields, err = e.Format.DecodeRecord(make([]byte, 8))
	require.NoError(t, err)
	assert.True(t, fields[1].Empty)
	_, err = e.Format.DecodeRecord(r.Value[:7])
	require.ErrorIs(t, err, ErrSize)
	bad := append([]byte(nil), r.Value...)
	bad[6] = 0x13 // month 13
	_, err = e.Format.DecodeRecord(bad)
	require.ErrorIs(t, err, ErrRange)
}

func TestSettlementEntriesAndTimes(t *testing.T) {
	e, ok := Builtin().Lookup(V2007, 0x00010003)
	require.True(t, ok)
	assert.Equal(t, MetricActiveEnergy+SuffixSettled, e.Metric)
	assert.Equal(t, Gauge, e.Kind)
	assert.Equal(t, StampSettlement, e.Stamp)
	assert.Equal(t, 3, e.History)
	assert.Equal(t, []Attribute{{AttrDirection, "import"}, {AttrPhase, "total"}, {AttrTariff, "total"}}, e.Attributes)
	e, ok = Builtin().Lookup(V2007, 0x0029000C)
	require.True(t, ok, "phase B forward active energy, 12th settlement day")
	assert.Equal(t, "B", e.Attr(AttrPhase))
	_, ok = Builtin().Lookup(V2007, 0x0001000D)
	assert.False(t, ok, "12 settlement days only")

	// 04000B01 = DDhh 0100: hh first on the wire.
	d, err := ParseSettlementDay([]byte{0x00, 0x01})
	require.NoError(t, err)
	assert.Equal(t, SettlementDay{Day: 1, Hour: 0}, d)
	d2, err := ParseSettlementDay([]byte{0x12, 0x15})
	require.NoError(t, err)
	assert.Equal(t, SettlementDay{Day: 15, Hour: 12}, d2)
	unset, err := ParseSettlementDay([]byte{0x99, 0x99})
	require.NoError(t, err)
	assert.Equal(t, SettlementDay{}, unset)
	assert.Equal(t, []byte{0x99, 0x99}, unset.Encode())
	assert.Equal(t, []byte{0x12, 0x15}, d2.Encode())
	_, err = ParseSettlementDay([]byte{0x00, 0x31})
	require.ErrorIs(t, err, ErrRange)

	now := time.Date(2024, 3, 5, 14, 30, 0, 0, cst)
	for _, tt := range []struct {
		days []SettlementDay
		n    int
		want time.Time
	}{
		{[]SettlementDay{d}, 1, time.Date(2024, 3, 1, 0, 0, 0, 0, cst)},
		{[]SettlementDay{d}, 2, time.Date(2024, 2, 1, 0, 0, 0, 0, cst)},
		{[]SettlementDay{d}, 12, time.Date(2023, 4, 1, 0, 0, 0, 0, cst)},
		{[]SettlementDay{d, d2, unset}, 1, time.Date(2024, 3, 1, 0, 0, 0, 0, cst)},
		{[]SettlementDay{d, d2, unset}, 2, time.Date(2024, 2, 15, 12, 0, 0, 0, cst)},
		{[]SettlementDay{d, d2, unset}, 3, time.Date(2024, 2, 1, 0, 0, 0, 0, cst)},
		{[]SettlementDay{d, d2, unset}, 12, time.Date(2023, 9, 15, 12, 0, 0, 0, cst)},
		{[]SettlementDay{{Day: 5, Hour: 14}}, 1, time.Date(2024, 3, 5, 14, 0, 0, 0, cst)},
		{[]SettlementDay{{Day: 5, Hour: 15}}, 1, time.Date(2024, 2, 5, 15, 0, 0, 0, cst)},
	} {
		got, ok := LastSettlement(tt.days, tt.n, now)
		require.True(t, ok)
		assert.Equal(t, tt.want, got, "%v last %d", tt.days, tt.n)
	}
	_, ok = LastSettlement([]SettlementDay{unset}, 1, now)
	assert.False(t, ok)
}

// Daily freeze 1: its time (05060001) and forward active energy, total and 2 tariffs (05060101).
func TestFreezeRecords(t *testing.T) {
	te, ok := Builtin().Lookup(V2007, 0x05060001)
	require.True(t, ok)
	assert.Equal(t, RecordTime, te.Kind)
	c, err := te.Format.DecodeClock([]byte{0x00, 0x00, 0x05, 0x03, 0x24})
	require.NoError(t, err)
	at, err := c.Time(cst)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 3, 5, 0, 0, 0, 0, cst), at)

	e, ok := Builtin().Lookup(V2007, 0x05060101)
	require.True(t, ok)
	assert.True(t, e.Repeat)
	assert.Equal(t, StampIdentifier, e.Stamp)
	assert.Equal(t, DI(0x05060001), e.TimeDI)
	assert.Equal(t, MetricActiveEnergy+SuffixFrozen, e.Metric)
	m, ok := Builtin().Block(V2007, 0x05060101)
	require.True(t, ok, "a repeating value reads like a block")
	parts, err := SplitBlock(m, []byte{0x56, 0x34, 0x12, 0x00, 0x00, 0x34, 0x12, 0x00, 0x56, 0x00, 0x00, 0x00})
	require.NoError(t, err)
	require.Len(t, parts, 3)
	want := []float64{1234.56, 1234.00, 0.56}
	for i, p := range parts {
		v, err := p.Entry.Format.Decode(p.Data)
		require.NoError(t, err)
		assert.Equal(t, want[i], v)
		assert.Equal(t, "daily", p.Entry.Attr(AttrFreeze))
		assert.Equal(t, "import", p.Entry.Attr(AttrDirection))
	}
	assert.Equal(t, "total", parts[0].Entry.Attr(AttrTariff))
	assert.Equal(t, "2", parts[2].Entry.Attr(AttrTariff))

	h, ok := Builtin().Lookup(V2007, 0x050402FE)
	require.True(t, ok, "hourly freeze 254, reverse active total")
	assert.False(t, h.Repeat)
	assert.Equal(t, DI(0x050400FE), h.TimeDI)
	assert.Equal(t, "total", h.Attr(AttrTariff))
	_, ok = Builtin().Lookup(V2007, 0x05040301)
	assert.False(t, ok, "hourly freezes hold active energy totals only")
	fp, ok := Builtin().Lookup(V2007, 0x0506103E)
	require.True(t, ok, "daily freeze 62, active and reactive power")
	assert.Len(t, fp.Readings(), 8)
	assert.Equal(t, 24, fp.Format.Size)
	assert.Equal(t, DI(0x0506003E), fp.TimeDI)
	assert.Equal(t, []Attribute{{AttrFreeze, "daily"}, {AttrPhase, "C"}}, fp.Readings()[7].Attributes)
	assert.Equal(t, MetricReactivePower+SuffixFrozen, fp.Readings()[7].Metric)
	_, ok = Builtin().Lookup(V2007, 0x05041001)
	assert.False(t, ok, "hourly freezes hold no variables")
	d, ok := Builtin().Lookup(V2007, 0x05000A0C)
	require.True(t, ok, "timed freeze 12, reverse active maximum demand")
	assert.Equal(t, MetricMaxDemandActive+SuffixFrozen, d.Metric)
	assert.Equal(t, 8, d.Format.Size)
}

func TestHarmonics(t *testing.T) {
	e, ok := Builtin().Lookup(V2007, 0x020B0315)
	require.True(t, ok)
	assert.Equal(t, MetricHarmonicCurrent, e.Metric)
	assert.Equal(t, "%", e.Unit)
	assert.Equal(t, []Attribute{{AttrPhase, "C"}, {AttrOrder, "21"}}, e.Attributes)
	m, ok := Builtin().Block(V2007, 0x020A01FF)
	require.True(t, ok)
	require.Len(t, m, 21)
	assert.Equal(t, "1", m[0].Attr(AttrOrder))
	assert.Equal(t, "21", m[20].Attr(AttrOrder))
	assert.True(t, IsBlock(V2007, 0x020A01FF))
	assert.False(t, IsBlock(V2007, 0x0001FFFF))
	// 3 orders of a block reply: 100.00 %, 3.25 %, 0.07 %
	parts, err := SplitBlock(m, []byte{0x00, 0x00, 0x25, 0x03, 0x07, 0x00})
	require.NoError(t, err)
	for i, want := range []float64{0, 3.25, 0.07} {
		v, err := parts[i].Entry.Format.Decode(parts[i].Data)
		require.NoError(t, err)
		assert.Equal(t, want, v)
	}
}

func TestEventRecords(t *testing.T) {
	c, ok := Builtin().Lookup(V2007, 0x03110000)
	require.True(t, ok)
	assert.Equal(t, Sum, c.Kind)
	assert.Equal(t, MetricEventCount, c.Metric)
	v, err := c.Format.Decode([]byte{0x27, 0x01, 0x00})
	require.NoError(t, err)
	assert.Equal(t, 127.0, v)

	// Last power-down: from 2024-03-01 08:00:00 to 09:30:15 (ss mm hh DD MM YY, twice).
	e, ok := Builtin().Lookup(V2007, 0x03110001)
	require.True(t, ok)
	fields, err := e.Format.DecodeRecord([]byte{0x00, 0x00, 0x08, 0x01, 0x03, 0x24, 0x15, 0x30, 0x09, 0x01, 0x03, 0x24})
	require.NoError(t, err)
	outs := e.Readings()
	require.Len(t, outs, 2)
	assert.Equal(t, OutTime, outs[0].Value)
	assert.Equal(t, OutDuration, outs[1].Value)
	start, err := fields[outs[1].Field].Clock.Time(cst)
	require.NoError(t, err)
	end, err := fields[outs[1].Field2].Clock.Time(cst)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 3, 1, 8, 0, 0, 0, cst), start)
	assert.Equal(t, 5415*time.Second, end.Sub(start))

	// Over-voltage counts and minutes, A B C: 3/120, 0/0, 1/5.
	ov, ok := Builtin().Lookup(V2007, 0x03030000)
	require.True(t, ok)
	fields, err = ov.Format.DecodeRecord([]byte{0x03, 0, 0, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0x05, 0, 0})
	require.NoError(t, err)
	got := map[string]float64{}
	for _, o := range ov.Readings() {
		got[o.Metric+"/"+attrValue(o.Attributes, AttrPhase)] = fields[o.Field].Number
	}
	assert.Equal(t, map[string]float64{
		MetricEventCount + "/A": 3, MetricEventDuration + "/A": 120,
		MetricEventCount + "/B": 0, MetricEventDuration + "/B": 0,
		MetricEventCount + "/C": 1, MetricEventDuration + "/C": 5,
	}, got)

	// The last phase A over-voltage: its start, whatever follows.
	la, ok := Builtin().Lookup(V2007, 0x03030101)
	require.True(t, ok)
	fields, err = la.Format.DecodeRecord([]byte{0x00, 0x00, 0x08, 0x01, 0x03, 0x24, 0x11, 0x22, 0x33})
	require.NoError(t, err)
	assert.Equal(t, []byte{0x11, 0x22, 0x33}, fields[1].Bytes)

	p, ok := Builtin().Lookup(V2007, 0x03300001)
	require.True(t, ok)
	assert.Equal(t, 50, p.Format.Size)
	co, ok := Builtin().Lookup(V2007, 0x03300D01)
	require.True(t, ok)
	assert.Equal(t, 60, co.Format.Size)
}

func attrValue(attrs []Attribute, key string) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// One load-profile record with classes 1 and 4, worked out by hand: A0 A0, length 2C (time 5 +
// class 1 17 + 3 separators + class 4 16 + 3 separators = 44), time 2024-03-05 14:15, voltages 220.1
// 221.2 219.8, currents 5.5 5.5 -1.25, 50.00 Hz; forward 1234.56 kWh, reverse 0, combined reactive
// 0.5 and 0 kvarh; checksum 995 → 95; E5.
const profileRecordHex = "A0 A0 2C 15 14 05 03 24" +
	" 01 22 12 22 98 21 00 55 00 00 55 00 50 12 80 00 50 AA AA AA" +
	" 56 34 12 00 00 00 00 00 50 00 00 00 00 00 00 00 AA AA AA 95 E5"

func TestLoadProfileRecord(t *testing.T) {
	b := unhex(t, profileRecordHex)
	at := time.Date(2024, 3, 5, 14, 15, 0, 0, cst)
	var vals [6][]float64
	vals[0] = []float64{220.1, 221.2, 219.8, 5.5, 5.5, -1.25, 50}
	vals[3] = []float64{1234.56, 0, 0.5, 0}
	enc, err := EncodeLoadProfile(at, vals)
	require.NoError(t, err)
	assert.Equal(t, b, enc)

	recs, err := DecodeLoadProfile(0, append(append([]byte(nil), b...), b...))
	require.NoError(t, err)
	require.Len(t, recs, 2)
	got, err := recs[0].Time.Time(cst)
	require.NoError(t, err)
	assert.Equal(t, at, got)
	assert.Equal(t, vals, recs[0].Values)
	assert.Equal(t, MetricVoltage, ProfileClass(1)[0].Metric)
	assert.Equal(t, MetricActiveEnergy, ProfileClass(4)[0].Metric)
	assert.Equal(t, "export", ProfileClass(4)[1].Attr(AttrDirection))

	// A class read answered with that class alone, without the other separators (seen on meters):
	// A0 A0 len=16h (5 + 17), time, class 1, CS, E5.
	one := append([]byte{0xA0, 0xA0, 0x16}, b[3:25]...)
	var cs byte
	for _, x := range one {
		cs += x
	}
	one = append(one, cs, 0xE5)
	recs, err = DecodeLoadProfile(1, one)
	require.NoError(t, err)
	assert.Equal(t, vals[0], recs[0].Values[0])
	assert.Nil(t, recs[0].Values[3])

	// A record the meter marks as not correct.
	badRec := append([]byte(nil), b...)
	badRec[0], badRec[1] = 0xE0, 0xE0
	badRec[len(badRec)-2] += 0x80 // its checksum over E0 E0
	recs, err = DecodeLoadProfile(0, badRec)
	require.NoError(t, err)
	assert.True(t, recs[0].Bad)

	for name, mutate := range map[string]func([]byte) []byte{
		"checksum":   func(x []byte) []byte { x[len(x)-2]++; return x },
		"end byte":   func(x []byte) []byte { x[len(x)-1] = 0x16; return x },
		"start":      func(x []byte) []byte { x[0] = 0x68; return x },
		"truncated":  func(x []byte) []byte { return x[:len(x)-3] },
		"class size": func(x []byte) []byte { x[2]--; x = append(x[:9], x[10:]...); x[len(x)-2] -= 0x01 + 0x22; return x },
		"not BCD":    func(x []byte) []byte { x[8] = 0x0A; x[len(x)-2] += 0x09; return x },
	} {
		_, err := DecodeLoadProfile(0, mutate(append([]byte(nil), b...)))
		assert.ErrorIs(t, err, ErrProfile, name)
	}
}

// The requests: 06000001 with 2 records from 2024-03-05 14:15 carries NN = 02 and mm hh DD MM YY.
func TestLoadProfileRequests(t *testing.T) {
	meter := mustAddr(t, "000000000001")
	req, err := LoadProfileRequest(meter, 0x06000001, 2, time.Date(2024, 3, 5, 14, 15, 0, 0, cst))
	require.NoError(t, err)
	b, err := req.Encode(0)
	require.NoError(t, err)
	// data 01 00 00 06 02 15 14 05 03 24 (+33 each); checksum 68+01+68+11+0A = EC, data 25C: 348 → 48.
	assert.Equal(t, unhex(t, "68 01 00 00 00 00 00 68 11 0A 34 33 33 39 35 48 47 38 36 57 48 16"), b)
	di, n, from, err := ParseLoadProfileRequest(req.Data)
	require.NoError(t, err)
	assert.Equal(t, DI(0x06000001), di)
	assert.Equal(t, 2, n)
	assert.Equal(t, Clock{Year: 2024, Month: 3, Day: 5, Weekday: -1, Hour: 14, Minute: 15, Second: 0}, from)

	req, err = LoadProfileRequest(meter, 0x06040002, 1, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []byte{0x02, 0x00, 0x04, 0x06, 0x01}, req.Data, "latest record of class 4: count only")

	_, err = LoadProfileRequest(meter, 0x00010000, 1, time.Time{})
	assert.Error(t, err)
	_, err = LoadProfileRequest(meter, 0x06070001, 1, time.Time{})
	assert.Error(t, err, "classes 0 to 6")
	_, err = LoadProfileRequest(meter, 0x06000001, 100, time.Time{})
	assert.Error(t, err)
	_, _, _, err = ParseLoadProfileRequest([]byte{0x01, 0x00, 0x00, 0x06, 0x02})
	assert.Error(t, err, "mode 01 without its start time")
}

// A request for a class or mode the standard does not have is refused, not served (the simulator
// indexed its classes by it).
func TestLoadProfileBadClass(t *testing.T) {
	_, _, _, err := ParseLoadProfileRequest([]byte{0x02, 0x00, 0x07, 0x06, 0x01})
	assert.ErrorIs(t, err, ErrUnexpected)
	_, _, _, err = ParseLoadProfileRequest([]byte{0x03, 0x00, 0x01, 0x06, 0x01})
	assert.ErrorIs(t, err, ErrUnexpected)
	_, err = DecodeLoadProfile(7, unhex(t, profileRecordHex))
	assert.ErrorIs(t, err, ErrProfile)
}

// History entries are derived on lookup: within the depths the standard gives, and not beyond.
func TestHistoryEntries(t *testing.T) {
	for di, ok := range map[DI]bool{
		0x0101000C: true, 0x0101000D: false, 0x0101FF01: false,
		0x0506003E: true, 0x0506003F: false, 0x05010003: true, 0x05010004: false,
		0x050400FE: true, 0x0000000C: true, 0x0015000C: true, 0x0201010C: false,
	} {
		_, got := Builtin().Lookup(V2007, di)
		assert.Equal(t, ok, got, di.Format(V2007))
	}
	e, _ := Builtin().Lookup(V2007, 0x05060903)
	assert.Equal(t, "forward active maximum demand, daily freeze 3 (1: the latest)", e.Name)
	assert.Equal(t, DI(0x05060003), e.TimeDI)
	e, _ = Builtin().Lookup(V2007, 0x01010102)
	assert.Equal(t, "forward active maximum demand, tariff 1, of the 2nd-last settlement period", e.Name)
	m, ok := Builtin().Block(V2007, 0x0001FF02)
	require.True(t, ok, "the tariffs at the 2nd-last settlement day")
	assert.Equal(t, DI(0x00010102), m[1].DI)
	assert.Equal(t, StampSettlement, m[1].Stamp)
}
