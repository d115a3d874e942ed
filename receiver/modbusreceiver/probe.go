package modbusreceiver

import (
	"context"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Probe tells cheaply whether the device's endpoint can be reached again, for the runner while the
// device's breaker is open after connection failures: a TCP dial of the endpoint (no Modbus request),
// for a serial line whether its port exists (an unplugged USB adapter), for a DTU whether it has
// dialled in.
//
// A connection another device of the endpoint keeps open shows the endpoint is reachable without a
// dial; a dial is made only when the whole endpoint is down, so it takes no bus time from a device
// that answers.
func (d *devicePoller) Probe(ctx context.Context) error {
	d.conn.mu.Lock()
	open := d.conn.open
	d.conn.mu.Unlock()
	if open {
		return nil
	}
	switch d.conn.spec.scheme {
	case schemeDTU:
		if d.conn.dtus != nil && d.conn.dtus.Connected(d.conn.spec.address) {
			return nil // its session is taken on the poll
		}
		return device.Errorf(device.ErrNotConnected, "DTU %s not connected", d.conn.spec.address)
	case "tcp", "rtuovertcp", "tcp+tls":
		d.conn.mu.Lock()
		addr := d.conn.address()
		d.conn.mu.Unlock()
		return device.ProbeTCP(ctx, addr, d.spec.poll.Timeout)
	case "rtu":
		return device.ProbePath(d.conn.spec.address)
	}
	return device.ErrNoProbe
}
