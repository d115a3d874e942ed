package dlt645sim

import (
	"context"
	"math"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Animate makes the meters look alive until ctx ends: every tick, voltage,
// current and power wander around a working point and forward active energy
// grows by power × time. Only identifiers a meter already has are touched.
func Animate(ctx context.Context, tick time.Duration, meters ...*Meter) {
	if len(meters) == 0 {
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	last := start
	// Energy is kept here at full precision: a tick adds less than the
	// format's last digit.
	energy := map[*Meter]map[dlt645.DI]float64{}
	for _, m := range meters {
		energy[m] = map[dlt645.DI]float64{}
		for _, di := range []dlt645.DI{0x00000000, 0x00010000, 0x9010} {
			if _, v, ok := number(m, di); ok {
				energy[m][di] = v
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(last).Hours()
			last = now
			phase := now.Sub(start).Seconds() / 60 * 2 * math.Pi
			for i, m := range meters {
				animateMeter(m, i, phase, dt, energy[m])
				m.mu.Lock()
				m.catchUpProfile(now) // a record holds the values of its moment
				m.mu.Unlock()
			}
		}
	}
}

func animateMeter(m *Meter, i int, phase, dtHours float64, energy map[dlt645.DI]float64) {
	add := func(di dlt645.DI, dv float64) {
		if v, ok := energy[di]; ok {
			energy[di] = v + dv
			setIfPresent(m, di, energy[di])
		}
	}
	w := math.Sin(phase + float64(i))
	if m.version == dlt645.V1997 {
		power := 3 + 2*w // kW
		setIfPresent(m, 0xB630, power)
		setIfPresent(m, 0xB611, math.Round(230+3*w))
		setIfPresent(m, 0xB621, power*1000/230/3)
		add(0x9010, power*dtHours)
		return
	}
	power := 5 + 3*w
	setIfPresent(m, 0x02030000, power)
	for p := 1; p <= 3; p++ {
		setIfPresent(m, dlt645.DI(0x02010000|p<<8), 220+2*math.Sin(phase+float64(p)))
		setIfPresent(m, dlt645.DI(0x02020000|p<<8), power*1000/220/3)
		setIfPresent(m, dlt645.DI(0x02030000|p<<8), power/3)
	}
	setIfPresent(m, 0x02800002, 50+0.02*w)
	add(0x00010000, power*dtHours)
	add(0x00000000, power*dtHours)
}

func number(m *Meter, di dlt645.DI) (dlt645.Format, float64, bool) {
	e, ok := dlt645.Builtin().Lookup(m.version, di)
	if !ok {
		return dlt645.Format{}, 0, false
	}
	m.mu.Lock()
	b, ok := m.values[di]
	m.mu.Unlock()
	if !ok {
		return dlt645.Format{}, 0, false
	}
	v, err := e.Format.Decode(b)
	return e.Format, v, err == nil
}

func setIfPresent(m *Meter, di dlt645.DI, v float64) {
	if f, _, ok := number(m, di); ok {
		_ = m.SetFormatted(di, f, v)
	}
}
