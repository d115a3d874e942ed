package modbussim

import (
	"math"
	"time"
)

// Simulated devices write plausible, moving values into a bank with the register layouts of the
// shipped profiles (distributions/otelcol-iiot/profiles): an Eastron SDM630 meter, a CHINT DTSU666
// meter and a SunSpec model 103 inverter. Energy registers only count up.

// Float32Regs returns the two registers of v, high word first (ABCD).
func Float32Regs(v float32) []uint16 {
	b := math.Float32bits(v)
	return []uint16{uint16(b >> 16), uint16(b)}
}

// Uint32Regs returns the two registers of v, high word first.
func Uint32Regs(v uint32) []uint16 { return []uint16{uint16(v >> 16), uint16(v)} }

// StringRegs packs s into n registers, two characters each, first character in the high byte, NUL padded.
func StringRegs(s string, n int) []uint16 {
	out := make([]uint16, n)
	for i := 0; i < 2*n && i < len(s); i++ {
		if i%2 == 0 {
			out[i/2] |= uint16(s[i]) << 8
		} else {
			out[i/2] |= uint16(s[i])
		}
	}
	return out
}

// Electrical is the state of a three-phase point of connection.
type Electrical struct {
	Voltage    [3]float64 // V, line to neutral
	Current    [3]float64 // A
	PF         [3]float64
	Frequency  float64 // Hz
	ImportKWh  float64
	ExportKWh  float64
	ImportVarh float64 // kvarh
}

// Power returns the active power of phase i (W).
func (e *Electrical) Power(i int) float64 { return e.Voltage[i] * e.Current[i] * e.PF[i] }

// Apparent returns the apparent power of phase i (VA).
func (e *Electrical) Apparent(i int) float64 { return e.Voltage[i] * e.Current[i] }

// Reactive returns the reactive power of phase i (var).
func (e *Electrical) Reactive(i int) float64 {
	s, p := e.Apparent(i), e.Power(i)
	return math.Sqrt(math.Max(0, s*s-p*p))
}

// Total returns the active power of the three phases (W).
func (e *Electrical) Total() float64 { return e.Power(0) + e.Power(1) + e.Power(2) }

// step moves the state to time t (seconds since start) after dt seconds, with a load of base amps.
func (e *Electrical) step(t, dt, base float64) {
	for i := 0; i < 3; i++ {
		ph := float64(i) * 2.1
		e.Voltage[i] = 230 + 2.5*math.Sin(t/37+ph) + 0.4*math.Sin(t/3.1+ph)
		e.Current[i] = math.Max(0.2, base*(1+0.35*math.Sin(t/53+ph)+0.1*math.Sin(t/7.7+ph)))
		e.PF[i] = 0.93 + 0.05*math.Sin(t/71+ph)
	}
	e.Frequency = 50 + 0.03*math.Sin(t/29)
	var q float64
	for i := 0; i < 3; i++ {
		q += e.Reactive(i)
	}
	e.ImportKWh += e.Total() * dt / 3600 / 1000
	e.ImportVarh += q * dt / 3600 / 1000
}

// SDM630 simulates an Eastron SDM630 (input registers, float32 ABCD).
type SDM630 struct {
	Bank *Bank
	Unit uint8
	E    Electrical
}

// Update writes the meter's state at t after dt.
func (m *SDM630) Update(t, dt float64) {
	e := &m.E
	e.step(t, dt, 12)
	set := func(addr int, v float64) { m.Bank.SetRegisters(m.Unit, Input, addr, Float32Regs(float32(v))...) }
	var va, vr float64
	for i := 0; i < 3; i++ {
		set(0+2*i, e.Voltage[i])
		set(6+2*i, e.Current[i])
		set(12+2*i, e.Power(i))
		set(18+2*i, e.Apparent(i))
		set(24+2*i, e.Reactive(i))
		set(30+2*i, e.PF[i])
		set(36+2*i, math.Acos(e.PF[i])*180/math.Pi)
		va += e.Apparent(i)
		vr += e.Reactive(i)
		ll := math.Sqrt(3) * (e.Voltage[i] + e.Voltage[(i+1)%3]) / 2
		set(200+2*i, ll)
	}
	set(42, (e.Voltage[0]+e.Voltage[1]+e.Voltage[2])/3)
	set(46, (e.Current[0]+e.Current[1]+e.Current[2])/3)
	set(48, e.Current[0]+e.Current[1]+e.Current[2])
	set(52, e.Total())
	set(56, va)
	set(60, vr)
	set(62, e.Total()/va)
	set(66, math.Acos(e.Total()/va)*180/math.Pi)
	set(70, e.Frequency)
	set(72, e.ImportKWh)
	set(74, e.ExportKWh)
	set(76, e.ImportVarh)
	set(78, 0)
	set(84, e.Total())
	set(86, e.Total()*1.2)
	set(224, math.Abs(e.Current[0]-e.Current[1])/2)
	set(342, e.ImportKWh+e.ExportKWh)
	set(344, e.ImportVarh)
}

// DTSU666 simulates a CHINT DTSU666 (holding registers, float32 ABCD in the meter's own units:
// 0.1 V, 0.001 A, 0.1 W, 0.001 PF, 0.01 Hz; energies in kWh).
type DTSU666 struct {
	Bank *Bank
	Unit uint8
	E    Electrical
}

// Update writes the meter's state at t after dt.
func (m *DTSU666) Update(t, dt float64) {
	e := &m.E
	e.step(t+100, dt, 8)
	set := func(addr int, v float64) { m.Bank.SetRegisters(m.Unit, Holding, addr, Float32Regs(float32(v))...) }
	var q float64
	for i := 0; i < 3; i++ {
		ll := math.Sqrt(3) * (e.Voltage[i] + e.Voltage[(i+1)%3]) / 2
		set(0x2000+2*i, ll*10)
		set(0x2006+2*i, e.Voltage[i]*10)
		set(0x200C+2*i, e.Current[i]*1000)
		set(0x2014+2*i, e.Power(i)*10)
		set(0x201C+2*i, e.Reactive(i)*10)
		set(0x202C+2*i, e.PF[i]*1000)
		q += e.Reactive(i)
	}
	set(0x2012, e.Total()*10)
	set(0x201A, q*10)
	set(0x202A, e.Total()/(e.Apparent(0)+e.Apparent(1)+e.Apparent(2))*1000)
	set(0x2044, e.Frequency*100)
	set(0x401E, e.ImportKWh)
	set(0x4028, e.ExportKWh)
}

// Inverter simulates a three-phase PV inverter with the SunSpec model 103 (integer + scale factor)
// after the Common model at the standard base 40000.
type Inverter struct {
	Bank   *Bank
	Unit   uint8
	Serial string
	// DayLength is how long a simulated day lasts (the power follows a sun curve).
	DayLength time.Duration
	wh        float64
}

// Init writes the SunSpec header, Common model and the scale factors.
func (v *Inverter) Init() {
	b, u := v.Bank, v.Unit
	b.SetRegisters(u, Holding, 40000, 0x5375, 0x6e53) // "SunS"
	b.SetRegisters(u, Holding, 40002, 1, 66)
	b.SetRegisters(u, Holding, 40004, StringRegs("otelcol-iiot", 16)...)
	b.SetRegisters(u, Holding, 40020, StringRegs("SIM-INV-10K", 16)...)
	b.SetRegisters(u, Holding, 40036, StringRegs("", 8)...)
	b.SetRegisters(u, Holding, 40044, StringRegs("1.4.2", 8)...)
	b.SetRegisters(u, Holding, 40052, StringRegs(v.Serial, 16)...)
	b.SetRegisters(u, Holding, 40068, uint16(u), 0x8000)
	b.SetRegisters(u, Holding, 40070, 103, 50)
	// scale factors: A -2, V -1, W 0, Hz -2, VA 0, VAr 0, PF -1, WH 0, DCA -2, DCV -1, DCW 0, Tmp -1
	sf := func(addr int, e int16) { b.SetRegisters(u, Holding, addr, uint16(e)) }
	sf(40076, -2)
	sf(40083, -1)
	sf(40085, 0)
	sf(40087, -2)
	sf(40089, 0)
	sf(40091, 0)
	sf(40093, -1)
	sf(40096, 0)
	sf(40098, -2)
	sf(40100, -1)
	sf(40102, 0)
	sf(40107, -1)
	b.SetRegisters(u, Holding, 40122, 0xFFFF, 0) // end model
}

// Update writes the inverter's state at t after dt.
func (v *Inverter) Update(t, dt float64) {
	day := v.DayLength.Seconds()
	if day <= 0 {
		day = 600
	}
	sun := math.Max(0, math.Sin(2*math.Pi*math.Mod(t, day)/day))
	w := 10000 * sun * (0.9 + 0.1*math.Sin(t/13))
	v.wh += w * dt / 3600
	b, u := v.Bank, v.Unit
	set := func(addr int, x uint16) { b.SetRegisters(u, Holding, addr, x) }
	vph := [3]float64{}
	ia := 0.0
	for i := 0; i < 3; i++ {
		vph[i] = 230 + 2*math.Sin(t/41+float64(i))
		ai := w / 3 / vph[i]
		ia += ai
		set(40073+i, uint16(math.Round(ai*100)))
		set(40080+i, uint16(math.Round(vph[i]*10)))
		set(40077+i, uint16(math.Round(vph[i]*math.Sqrt(3)*10)))
	}
	set(40072, uint16(math.Round(ia*100)))
	set(40084, uint16(int16(math.Round(w))))
	set(40086, uint16(math.Round((50+0.02*math.Sin(t/17))*100)))
	set(40088, uint16(int16(math.Round(w/0.99))))
	set(40090, uint16(int16(math.Round(w*0.05))))
	set(40092, uint16(int16(990)))
	b.SetRegisters(u, Holding, 40094, Uint32Regs(uint32(v.wh))...)
	dcv := 600 + 40*sun
	set(40097, uint16(math.Round(w/0.97/dcv*100)))
	set(40099, uint16(math.Round(dcv*10)))
	set(40101, uint16(int16(math.Round(w/0.97))))
	set(40103, uint16(int16(math.Round((30+15*sun)*10))))
	set(40104, uint16(int16(math.Round((35+25*sun)*10))))
	set(40105, 0x8000) // not implemented
	set(40106, 0x8000)
	state := uint16(2) // sleeping
	if w > 10 {
		state = 4 // MPPT
	}
	set(40108, state)
}
