package dlt645sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

var cst = time.FixedZone("CST", 8*3600)

func decodeFields(t *testing.T, di dlt645.DI, b []byte) []dlt645.Field {
	t.Helper()
	e, ok := dlt645.Builtin().Lookup(dlt645.V2007, di)
	require.True(t, ok)
	f, err := e.Format.DecodeRecord(b)
	require.NoError(t, err)
	return f
}

func TestRecordsDemandSettleFreeze(t *testing.T) {
	m := NewMeter(addr(t, "000000000001"), dlt645.V2007)
	m.SetClock(0, cst)
	require.NoError(t, m.Set(0x00010000, 1000))
	require.NoError(t, m.Set(0x00010100, 400))
	require.NoError(t, m.Set(0x00010200, 600))
	require.NoError(t, m.Set(0x00020000, 5))
	at := time.Date(2024, 3, 5, 14, 30, 0, 0, cst)
	require.NoError(t, m.SetRecord(0x01010000, []float64{12.3456}, []time.Time{at}))
	require.Error(t, m.SetRecord(0x01010000, []float64{100}, []time.Time{at}), "does not fit XX.XXXX")
	require.NoError(t, m.SetRecord(0x03110001, nil, []time.Time{at, at.Add(90 * time.Second)}))
	m.SetSettlementDays(dlt645.SettlementDay{Day: 1})
	_, cl := startTCP(t, Options{}, m)
	ctx := context.Background()

	r, err := cl.Read(ctx, dlt645.V2007, m.Address(), 0x01010000)
	require.NoError(t, err)
	f := decodeFields(t, 0x01010000, r.Value)
	assert.Equal(t, 12.3456, f[0].Number)
	got, err := f[1].Clock.Time(cst)
	require.NoError(t, err)
	assert.Equal(t, at, got)

	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x03110001)
	require.NoError(t, err)
	f = decodeFields(t, 0x03110001, r.Value)
	end, err := f[1].Clock.Time(cst)
	require.NoError(t, err)
	assert.Equal(t, at.Add(90*time.Second), end)

	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), dlt645.DISettlementDay1)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0x01}, r.Value)

	// Before any settlement the meter has no history; after two, the last and the one before.
	_, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x00010001)
	var me *dlt645.MeterError
	require.True(t, errors.As(err, &me))
	m.Settle()
	require.NoError(t, m.Set(0x00010000, 1100))
	m.Settle()
	for di, want := range map[dlt645.DI]float64{0x00010001: 1100, 0x00010002: 1000, 0x00010101: 400, 0x00020002: 5} {
		r, err := cl.Read(ctx, dlt645.V2007, m.Address(), di)
		require.NoError(t, err, di.Format(dlt645.V2007))
		v, err := dlt645.Builtin().Entries(dlt645.V2007)[0].Format.Decode(r.Value)
		require.NoError(t, err)
		assert.Equal(t, want, v, di.Format(dlt645.V2007))
	}
	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x01010000)
	require.NoError(t, err)
	assert.True(t, decodeFields(t, 0x01010000, r.Value)[1].Empty, "the current period starts without a maximum")
	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x01010002)
	require.NoError(t, err)
	assert.Equal(t, 12.3456, decodeFields(t, 0x01010002, r.Value)[0].Number)

	// A daily freeze: its time, the energies with their tariffs; a second one moves it back.
	day := time.Date(2024, 3, 6, 0, 0, 0, 0, cst)
	require.NoError(t, m.Freeze(0x06, day))
	require.NoError(t, m.Set(0x00010000, 1200))
	require.NoError(t, m.Freeze(0x06, day.AddDate(0, 0, 1)))
	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x05060002)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0x00, 0x06, 0x03, 0x24}, r.Value)
	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x05060102)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x06, 0x00}, r.Value, "1100, 400, 600")
	r, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x05060101)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0x00, 0x12, 0x00}, r.Value[:4])
	require.Error(t, m.Freeze(0x02, day), "not a catalogued freeze")
}

func TestRecordsHarmonicBlock(t *testing.T) {
	m := NewMeter(addr(t, "000000000001"), dlt645.V2007)
	for o := 1; o <= 3; o++ {
		require.NoError(t, m.Set(0x020A0100|dlt645.DI(o), float64(o)*1.25))
	}
	_, cl := startTCP(t, Options{}, m)
	r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x020A01FF)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x25, 0x01, 0x50, 0x02, 0x75, 0x03}, r.Value)
}

// The load profile by start time and count, across follow-up frames (5 records of 103 bytes do
// not fit one frame), and the meter recording its profile every minute by itself.
func TestRecordsLoadProfile(t *testing.T) {
	m := NewMeter(addr(t, "000000000001"), dlt645.V2007)
	m.SetClock(0, cst)
	m.SetMaxData(64)
	start := time.Date(2024, 3, 5, 14, 0, 0, 0, cst)
	for i := range 10 {
		var vals [6][]float64
		vals[0] = []float64{220 + float64(i)/10, 221, 219, 5, 5, 5, 50}
		vals[3] = []float64{1000 + float64(i), 0, 0, 0}
		require.NoError(t, m.AddProfileRecord(start.Add(time.Duration(i)*15*time.Minute), vals))
	}
	_, cl := startTCP(t, Options{}, m)
	ctx := context.Background()

	recs, res, err := cl.ReadLoadProfile(ctx, m.Address(), 0x06000001, 5, start.Add(40*time.Minute))
	require.NoError(t, err)
	assert.Greater(t, res.Frames, 1, "follow-up frames")
	require.Len(t, recs, 5)
	for i, r := range recs {
		at, err := r.Time.Time(cst)
		require.NoError(t, err)
		assert.Equal(t, start.Add(time.Duration(i+3)*15*time.Minute), at, "the first at or after 14:40 is 14:45")
		assert.Equal(t, 1003+float64(i), r.Values[3][0])
	}
	recs, _, err = cl.ReadLoadProfile(ctx, m.Address(), 0x06040002, 1, time.Time{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, 1009.0, recs[0].Values[3][0])
	assert.Nil(t, recs[0].Values[0], "a class-4 read holds class 4 only")
	recs, _, err = cl.ReadLoadProfile(ctx, m.Address(), 0x06000000, 2, time.Time{})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, 220.0, recs[0].Values[0][0])
	_, _, err = cl.ReadLoadProfile(ctx, m.Address(), 0x06000001, 1, start.Add(24*time.Hour))
	var me *dlt645.MeterError
	require.True(t, errors.As(err, &me), "no record after the last: %v", err)

	// Recording by itself: every minute of the meter's clock, with the values of the moment.
	a := NewMeter(addr(t, "000000000002"), dlt645.V2007)
	a.SetClock(0, cst)
	require.NoError(t, a.Set(0x00010000, 10))
	require.NoError(t, a.Set(0x00020000, 0))
	require.NoError(t, a.Set(0x00030000, 0))
	require.NoError(t, a.Set(0x00040000, 0))
	t0 := time.Date(2024, 3, 5, 14, 0, 30, 0, cst)
	a.SetProfileInterval(time.Minute, 100, t0)
	srv := NewServer(Options{}, a)
	a.mu.Lock()
	a.catchUpProfile(t0.Add(2 * time.Minute)) // 14:01, 14:02
	a.mu.Unlock()
	require.NoError(t, a.Set(0x00010000, 11))
	req, err := dlt645.LoadProfileRequest(a.Address(), 0x06040001, 10, time.Date(2024, 3, 5, 14, 0, 0, 0, cst))
	require.NoError(t, err)
	replies := srv.Handle(req, t0.Add(4*time.Minute)) // 14:03, 14:04 recorded now
	require.Len(t, replies, 1)
	recs, err = dlt645.DecodeLoadProfile(4, replies[0].Data[4:])
	require.NoError(t, err)
	require.Len(t, recs, 4)
	for i, r := range recs {
		at, err := r.Time.Time(cst)
		require.NoError(t, err)
		assert.Equal(t, time.Date(2024, 3, 5, 14, 1+i, 0, 0, cst), at)
	}
	assert.Equal(t, 10.0, recs[1].Values[3][0])
	assert.Equal(t, 11.0, recs[2].Values[3][0])
}

func TestRecordsConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
meters:
  - address: "1"
    time_zone: Asia/Shanghai
    settlement_days: ["0100", "1512"]
    profile_interval: 1m
    records:
      "01010000": ["12.3456", "2024-03-05T14:30:00+08:00"]
`))
	require.NoError(t, err)
	meters, _, err := c.BuildMeters()
	require.NoError(t, err)
	m := meters[0]
	v, w := m.value(0x01010000, time.Now())
	require.Zero(t, w)
	assert.Equal(t, []byte{0x56, 0x34, 0x12, 0x30, 0x14, 0x05, 0x03, 0x24}, v)
	v, _ = m.value(dlt645.DISettlementDay2, time.Now())
	assert.Equal(t, []byte{0x12, 0x15}, v)
	v, _ = m.value(dlt645.DISettlementDay3, time.Now())
	assert.Equal(t, []byte{0x99, 0x99}, v)
	assert.Equal(t, time.Minute, m.profileEvery)

	c, err = ParseConfig([]byte(`
meters:
  - address: "1"
    settlement_days: ["3200", "x"]
    records:
      "01010000": ["abc"]
      "12345678": ["1"]
`))
	require.NoError(t, err)
	_, _, err = c.BuildMeters()
	require.Error(t, err)
	for _, want := range []string{`settlement_days[0] "3200"`, `settlement_days[1] "x"`, "records[01010000]", "records[12345678]"} {
		assert.Contains(t, err.Error(), want)
	}
}

// A load-profile request for a class the standard does not have gets an error word, not a crash.
func TestRecordsLoadProfileBadRequest(t *testing.T) {
	m := NewMeter(addr(t, "000000000001"), dlt645.V2007)
	require.NoError(t, m.AddProfileRecord(time.Date(2024, 3, 5, 14, 0, 0, 0, time.Local), [6][]float64{}))
	srv := NewServer(Options{}, m)
	req := dlt645.Frame{Address: m.Address(), Control: dlt645.FuncRead2007, Data: []byte{0x02, 0x00, 0x07, 0x06, 0x01}}
	replies := srv.Handle(req, time.Now())
	require.Len(t, replies, 1)
	assert.True(t, replies[0].Control.IsAbnormal())
}
