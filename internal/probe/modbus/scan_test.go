package modbus

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/faultproxy"
	mb "github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// mbapUnit matches Modbus/TCP replies of one unit (the unit id is byte 6 of the MBAP header).
func mbapUnit(u byte) func([]byte) bool {
	return func(b []byte) bool { return len(b) > 6 && b[6] == u }
}

func kinds(r *ScanResult) map[int]Kind {
	m := map[int]Kind{}
	for _, u := range r.Units {
		m[u.Unit] = u.Kind
	}
	return m
}

// TestScanFaults scans a link with devices, an exception, a gateway's "no device" answer, a unit that
// never answers, a reset connection and a garbled reply: only the devices are reported, the silent
// unit costs one timeout, and the units after the faults still read (the link is reopened after each
// doubt).
func TestScanFaults(t *testing.T) {
	bank := modbussim.NewBank(1, 3, 4, 5, 7, 8)
	bank.SetRegisters(1, modbussim.Holding, 0, 1234)
	bank.Fail(4, modbussim.Holding, 0, 0, modbus.ErrIllegalDataAddress) // a device without holding 0
	target := startServer(t, bank)
	proxy, err := faultproxy.New(target, faultproxy.WithFramer(faultproxy.MBAPFrames))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.Inject(
		faultproxy.When(mbapUnit(5), faultproxy.Truncate(0)),                                         // unit 5 never answers
		faultproxy.When(mbapUnit(6), faultproxy.Reset()),                                             // the gateway resets the socket on unit 6
		faultproxy.When(mbapUnit(7), faultproxy.Garbage(0, []byte{0xde, 0xad, 0xbe, 0xef, 0, 9, 9})), // unit 7: garbage first
	)
	cfg := ScanConfig{Endpoint: endpoint(t, "tcp://"+proxy.Addr()), Units: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, Timeout: 200 * time.Millisecond, MaxTime: time.Minute}
	res, err := Scan(cfg)
	require.NoError(t, err)
	k := kinds(res)
	assert.Equal(t, map[int]Kind{1: KindOK, 2: KindGateway, 3: KindOK, 4: KindException, 5: KindTimeout, 6: KindConnection, 7: KindGarbled, 8: KindOK, 9: KindGateway}, k)
	var present []int
	for _, u := range res.Present() {
		present = append(present, u.Unit)
	}
	assert.Equal(t, []int{1, 3, 4, 8}, present, "devices are the units that answered, exceptions included; not the gateway's exception 11")
	assert.Equal(t, 9, res.Requests, "one request per unit")

	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	s := out.String()
	assert.Contains(t, s, "unit 1: answered (holding 0 = 1234)")
	assert.Contains(t, s, "unit 4: answered with exception 2")
	assert.Contains(t, s, "unit 7: garbled reply")
	assert.Contains(t, s, "no answer: 5")
	assert.Contains(t, s, "no device behind it): 2,9")
	assert.Contains(t, s, "unit 6: the connection broke while asking it")
	assert.Contains(t, s, "# - {id: unit-8, unit_id: 8, profile: PROFILE}")
}

// TestScanBounded: a link where nothing answers stops after --max-time, listing the units it did not try.
func TestScanBounded(t *testing.T) {
	bank := modbussim.NewBank(1)
	target := startServer(t, bank)
	proxy, err := faultproxy.New(target, faultproxy.WithFramer(faultproxy.MBAPFrames))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetPolicy(func() faultproxy.Fault { return faultproxy.Truncate(0) }) // nothing ever answers

	// A clock that advances one second per look: the scan looks once per unit, so a budget of 5 s allows
	// 5 units whatever the machine's speed (each costs a real 20 ms timeout).
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
	units := make([]int, 247)
	for i := range units {
		units[i] = i + 1
	}
	cfg := ScanConfig{Endpoint: endpoint(t, "tcp://"+proxy.Addr()), Units: units, Timeout: 20 * time.Millisecond, MaxTime: 5 * time.Second, Now: clock}
	res, err := Scan(cfg)
	require.NoError(t, err)
	require.Len(t, res.Units, 4)
	assert.Empty(t, res.Present())
	assert.Equal(t, units[4:], res.NotTried)
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	assert.Contains(t, out.String(), "not tried (the scan's --max-time was spent): 5-247")
	assert.Contains(t, out.String(), "devices: []  # no device answered")
}

// TestScanRefused: an endpoint that refuses connections fails at once instead of dialling per unit.
func TestScanRefused(t *testing.T) {
	_, err := Scan(ScanConfig{Endpoint: endpoint(t, "tcp://"+freeAddr(t)), Units: []int{1, 2, 3}, Timeout: time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")
}

// TestScanPymodbus scans Debian's pymodbus, which leaves requests to absent units unanswered.
func TestScanPymodbus(t *testing.T) {
	addr := pymodbus(t, "--ignore-missing")
	res, err := Scan(ScanConfig{Endpoint: endpoint(t, "tcp://"+addr), Units: []int{1, 2, 3, 4}, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, map[int]Kind{1: KindException, 2: KindTimeout, 3: KindException, 4: KindTimeout}, kinds(res),
		"unit 1 has no holding 0, unit 3 no holding registers at all: both answer exception 2")
	require.Len(t, res.Present(), 2)
	assert.Equal(t, 2, res.Present()[0].Code)
}

// TestScanPymodbusRTU scans pymodbus serving RTU frames over TCP: our RTU parser against another
// implementation's frames and CRCs, exceptions included; and the same server scanned as tcp://.
func TestScanPymodbusRTU(t *testing.T) {
	addr := pymodbus(t, "--ignore-missing", "--framer", "rtu")
	res, err := Scan(ScanConfig{Endpoint: endpoint(t, "rtuovertcp://"+addr), Units: []int{1, 2, 3}, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, map[int]Kind{1: KindException, 2: KindTimeout, 3: KindException}, kinds(res))
	assert.Equal(t, 2, res.Units[0].Code)

	c := CheckConfig{Endpoint: endpoint(t, "rtuovertcp://"+addr), Unit: 1, Timeout: time.Second}
	c.Profile, err = FindProfile("testdata/pymodbus-meter.yaml", nil)
	require.NoError(t, err)
	cr, err := Check(c)
	require.NoError(t, err)
	assert.InDelta(t, 49.98, results(cr)["frequency"].Value, 1e-4)
}

// TestScanRTUOverTCP scans an RTU-over-TCP gateway with a dead meter, and the same gateway with the
// wrong scheme: the RTU answers are reported as garbled with the framing named, not as silence.
func TestScanRTUOverTCP(t *testing.T) {
	bank := modbussim.NewBank(1, 2, 3)
	bank.SetSilent(2, true)
	srv, err := modbussim.ListenRTUOverTCP("127.0.0.1:0", bank)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })

	res, err := Scan(ScanConfig{Endpoint: endpoint(t, "rtuovertcp://"+srv.Addr()), Units: []int{1, 2, 3, 4}, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, map[int]Kind{1: KindOK, 2: KindTimeout, 3: KindOK, 4: KindTimeout}, kinds(res))

	// The gateway drops Modbus/TCP frames (their CRC is wrong): scanned as tcp://, nothing answers, and
	// the report says which scheme to try.
	cfg := ScanConfig{Endpoint: endpoint(t, "tcp://"+srv.Addr()), Units: []int{1, 3}, Timeout: 100 * time.Millisecond}
	res, err = Scan(cfg)
	require.NoError(t, err)
	assert.Equal(t, map[int]Kind{1: KindTimeout, 3: KindTimeout}, kinds(res))
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	assert.Contains(t, out.String(), "try rtuovertcp://")
}

// TestScanWrongFraming: an RTU frame arriving on a tcp:// scan is reported as garbled, naming the
// framing it is in.
func TestScanWrongFraming(t *testing.T) {
	bank := modbussim.NewBank(1)
	proxy, err := faultproxy.New(startServer(t, bank), faultproxy.WithFramer(faultproxy.MBAPFrames))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	rtu := []byte{1, 3, 2, 0x04, 0xd2}
	c := mb.CRC16(rtu)
	proxy.Inject(faultproxy.Garbage(0, append(rtu, byte(c), byte(c>>8))))
	res, err := Scan(ScanConfig{Endpoint: endpoint(t, "tcp://"+proxy.Addr()), Units: []int{1, 1}, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, res.Units, 2)
	assert.Equal(t, KindGarbled, res.Units[0].Kind)
	assert.Contains(t, res.Units[0].Detail, "an RTU frame; the endpoint is probably rtuovertcp://")
	assert.Equal(t, KindOK, res.Units[1].Kind, "the next request goes out on a fresh connection and reads")
}

// TestScanIdentify scans the simulated SDM630, inverter and DTSU666 and identifies each by the shipped
// profiles (a register map read at the wrong place reads zeros: they do not count); an unknown device
// stays commented. The output loads in the receiver.
func TestScanIdentify(t *testing.T) {
	bank := modbussim.NewBank(1, 2, 3, 9)
	sdm := &modbussim.SDM630{Bank: bank, Unit: 1}
	sdm.E.ImportKWh = 100
	inv := &modbussim.Inverter{Bank: bank, Unit: 2, Serial: "SIM1", DayLength: time.Hour}
	inv.Init()
	dtsu := &modbussim.DTSU666{Bank: bank, Unit: 3}
	dtsu.E.ImportKWh = 200
	for _, u := range []func(t, dt float64){sdm.Update, inv.Update, dtsu.Update} {
		u(1200, 1) // a third into the simulated day: the inverter produces
	}
	bank.SetRegisters(9, modbussim.Holding, 0, 1, 2, 3)
	cfg := ScanConfig{Endpoint: endpoint(t, "tcp://"+startServer(t, bank)), Units: []int{1, 2, 3, 4, 9}, Timeout: time.Second}
	res, err := Scan(cfg)
	require.NoError(t, err)
	profiles, err := AllProfiles([]string{profilesDir})
	require.NoError(t, err)
	require.Len(t, profiles, 3)
	require.NoError(t, Identify(cfg, res, profiles))
	got := map[int]string{}
	for u, id := range res.Identified {
		got[u] = id.Profile.Name
	}
	assert.Equal(t, map[int]string{1: "eastron_sdm630", 2: "sunspec_inverter_103", 3: "chint_dtsu666"}, got)

	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	s := out.String()
	assert.Contains(t, s, "# - {id: unit-9, unit_id: 9, profile: PROFILE}")
	c := loadModbusYAML(t, s)
	require.Len(t, c.Connections[0].Devices, 3)
	assert.Len(t, c.ProfileFiles, 3)
}
