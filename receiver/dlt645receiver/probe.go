package dlt645receiver

import (
	"context"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Probe tells cheaply whether the meter's line can be reached again, for the runner while the meter's
// breaker is open after connection failures: a TCP dial of the serial server (no DL/T 645 request), or
// for a serial line whether its port exists (an unplugged USB adapter), for a DTU whether it has
// dialled in.
//
// A line another meter keeps open shows it is reachable without a dial; a dial is made only when the
// line is down, so it takes no bus time from a meter that answers.
func (m *meterPoller) Probe(ctx context.Context) error {
	m.bus.mu.Lock()
	open := m.bus.client != nil
	m.bus.mu.Unlock()
	if open {
		return nil
	}
	if m.bus.spec.scheme == schemeDTU {
		if m.bus.dtus.Connected(m.bus.spec.address) {
			return nil // its session is taken on the poll
		}
		return device.Errorf(device.ErrNotConnected, "DTU %s not connected", m.bus.spec.address)
	}
	if m.bus.spec.scheme == schemeTCP {
		return device.ProbeTCP(ctx, m.bus.spec.address, m.spec.poll.Timeout)
	}
	if m.bus.spec.serial.Device != "" {
		return device.ProbePath(m.bus.spec.serial.Device)
	}
	return device.ErrNoProbe
}
