//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// dltMeter is a simulated three-phase DL/T 645-2007 meter with known values.
func dltMeter(t *testing.T, address string) *dlt645sim.Meter {
	t.Helper()
	a, err := dlt645.ParseAddress(address)
	require.NoError(t, err)
	m := dlt645sim.NewMeter(a, dlt645.V2007)
	for di, v := range map[dlt645.DI]float64{
		0x00010000: 12345.67, 0x00020000: 12.5,
		0x02010100: 220.1, 0x02010200: 221.3, 0x02010300: 219.8,
		0x02020100: 5.5, 0x02020200: -5.25, 0x02020300: 4.75,
		0x02030000: -1.2345, 0x02060000: -0.866, 0x02800002: 50.01,
	} {
		require.NoError(t, m.Set(di, v))
	}
	return m
}

// The built collector reads simulated meters through a TCP serial server and over an RS-485 bus
// made of a socat pty pair, into a real Prometheus: exact energy, voltage, current, signed power,
// power factor and frequency, for 2007 and 1997 meters; an error word makes a stale series and a
// counted exception; noise on both lines loses no frame; a meter switched off costs the others
// nothing once its breaker is open.
func TestDLT645EndToEnd(t *testing.T) {
	prom := startPrometheus(t)
	sink := startTraceSink(t)

	// TCP serial server: three meters, noise before a third of the replies.
	tcp1, tcp2, tcp3 := dltMeter(t, "000000000001"), dltMeter(t, "000000000002"), dltMeter(t, "000000000003")
	tcp2.SetError(0x02800002, 0x02) // "no requested data" for the frequency
	require.NoError(t, tcp3.Set(0x02020100, -12.345))
	tcpSrv := dlt645sim.NewServer(dlt645sim.Options{Preamble: 4, NoiseProbability: 0.3, Seed: 1}, tcp1, tcp2, tcp3)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = tcpSrv.Serve(l) }()
	t.Cleanup(func() { tcpSrv.Close() })

	// RS-485 bus on a pty pair: a 2007 and a 1997 meter, with noise.
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	require.NoError(t, err, "socat is needed (make deps)")
	t.Cleanup(func() { pair.Close() })
	ser2007 := dltMeter(t, "000000000011")
	a97, _ := dlt645.ParseAddress("000000001997")
	ser1997 := dlt645sim.NewMeter(a97, dlt645.V1997)
	for di, v := range map[dlt645.DI]float64{0x9010: 2345.6, 0xB611: 231, 0xB621: 4.35, 0xB630: 1.0005, 0xB650: 0.987} {
		require.NoError(t, ser1997.Set(di, v))
	}
	serSrv := dlt645sim.NewServer(dlt645sim.Options{Preamble: 2, NoiseProbability: 0.3, Seed: 2}, ser2007, ser1997)
	ctx, cancel := context.WithCancel(context.Background())
	serDone := make(chan struct{})
	go func() {
		defer close(serDone)
		_ = serSrv.ServeSerial(ctx, dlt645.DefaultSerialConfig(pair.A))
	}()
	t.Cleanup(func() {
		cancel()
		serSrv.Close()
		<-serDone
	})

	data := vars{"TCPAddr": l.Addr().String(), "SerialDevice": pair.B, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "dlt645/config.yaml")

	prom.expectValues(t, "dlt645/expected.yaml", data)
	// Resource attributes become labels.
	s := prom.Query(t, `electrical_voltage_volts{device_id="ser-1997",phase="A"}`)
	require.Len(t, s, 1)
	require.Equal(t, "000000001997", s[0].Labels["dlt645_meter_address"])
	require.Equal(t, "serial://"+pair.B+"/000000001997", s[0].Labels["device_address"])

	// The error word: tcp-2's frequency is a stale series (no sample at all, although the lookback
	// is 1m), the exception is counted, and the meter is up.
	require.True(t, assertEventually(10*time.Second, func() bool {
		s, err := prom.QueryE(`electrical_frequency_hertz{device_id="tcp-2"}`)
		return err == nil && len(s) == 0
	}), "the frequency of tcp-2 is not stale")
	require.True(t, assertEventually(10*time.Second, func() bool {
		s, err := prom.QueryE(`iiot_device_poll_errors_total{device_id="tcp-2",error_type="exception"}`)
		return err == nil && len(s) == 1 && s[0].Value >= 1
	}), "the error word is not counted")

	// Noise on both lines cost no request: no timeout or checksum error anywhere, yet noise flowed.
	require.Positive(t, tcpSrv.Stats().NoiseBytes)
	require.Positive(t, serSrv.Stats().NoiseBytes)
	for _, dev := range []string{"tcp-1", "tcp-2", "tcp-3", "ser-2007", "ser-1997"} {
		s := prom.Query(t, fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q,error_type=~"timeout|checksum|protocol"}`, dev))
		require.Empty(t, s, "%s lost frames to noise: %v", dev, s)
	}

	// tcp-3 is switched off: its breaker opens, its readings go stale, and the others on its bus
	// keep their pace (one poll a second: at least 8 fresh samples in the last 10 s).
	tcp3.SetOff(true)
	prom.eventuallyValue(t, `iiot_device_breaker_state{device_id="tcp-3"}`, 2, 30*time.Second)
	require.True(t, assertEventually(10*time.Second, func() bool {
		s, err := prom.QueryE(`electrical_voltage_volts{device_id="tcp-3",phase="A"}`)
		return err == nil && len(s) == 0
	}), "the readings of the dead meter are not stale")
	time.Sleep(11 * time.Second) //nolint:forbidigo // the assertion is about a 10 s window of wall time after the fault
	for _, dev := range []string{"tcp-1", "tcp-2"} {
		s := prom.Query(t, fmt.Sprintf(`count_over_time(electrical_voltage_volts{device_id=%q,phase="A"}[10s])`, dev))
		require.Len(t, s, 1, dev)
		require.GreaterOrEqual(t, s[0].Value, 8.0, "%s was slowed down by the dead meter", dev)
	}
	prom.eventuallyValue(t, `iiot_device_up{device_id="tcp-3"}`, 0, 10*time.Second)

	// Traces: poll spans with read spans; the error word on tcp-2's frequency; the dead meter's
	// timeouts, one request per poll.
	require.True(t, assertEventually(30*time.Second, func() bool {
		var polls, errWord, timeouts int
		for _, sp := range sink.Spans(t) {
			switch {
			case sp.Name == "dlt645.poll":
				polls++
				if sp.Resource["device.id"] == "tcp-3" && sp.Status == "Error" && fmt.Sprint(sp.Attrs["iiot.poll.requests"]) != "1" {
					return false
				}
			case sp.Name == "dlt645.read" && sp.Resource["device.id"] == "tcp-2" && sp.Attrs["dlt645.di"] == "02800002":
				if sp.Attrs["dlt645.error_word"] == "02" && sp.Status == "Error" && sp.Attrs["dlt645.control_code"] == "11" {
					errWord++
				}
			case sp.Name == "dlt645.read" && sp.Resource["device.id"] == "tcp-3" && sp.Attrs["error.type"] == "timeout":
				timeouts++
			}
		}
		return polls > 0 && errWord > 0 && timeouts > 0
	}), "missing poll spans, the error word span or the dead meter's timeout spans")

	// The metric names the dashboards rely on.
	names := prom.Query(t, `count by (__name__) ({__name__=~"(dlt645|electrical)_.*"})`)
	var got []string
	for _, n := range names {
		got = append(got, n.Labels["__name__"])
		assert.Regexp(t, `^[a-z0-9_]+$`, n.Labels["__name__"], "Prometheus names are lower case")
	}
	assert.Contains(t, got, "electrical_energy_active_watt_hours_total")
	t.Logf("dlt645 series in Prometheus: %s", strings.Join(got, ", "))
}
