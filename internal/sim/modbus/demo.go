package modbussim

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/simonvetter/modbus"
)

// DemoOptions sets up the demo plant served by cmd/modbussim.
type DemoOptions struct {
	// TCP and RTUOverTCP are listen addresses; empty leaves a transport off.
	TCP, RTUOverTCP string
	// Unit ids of the three devices; 0 leaves a device out.
	SDM630Unit, InverterUnit, DTSU666Unit uint8
	// Update is how often the values move; DayLength is the inverter's simulated day.
	Update, DayLength time.Duration
	// Serial is the inverter's serial number (SunSpec Common model).
	Serial string
}

// Demo is a register bank with an SDM630, a DTSU666 and a SunSpec inverter whose values move.
type Demo struct {
	Bank    *Bank
	updates []func(t, dt float64)
	start   time.Time
}

// NewDemo builds the bank and writes the devices' first values.
func NewDemo(o DemoOptions) (*Demo, error) {
	for _, u := range []uint8{o.SDM630Unit, o.InverterUnit, o.DTSU666Unit} {
		if u > 247 {
			return nil, fmt.Errorf("unit ids must be 1 to 247, got %d", u)
		}
	}
	d := &Demo{Bank: NewBank(), start: time.Now()}
	if o.SDM630Unit != 0 {
		d.Bank.AddUnit(o.SDM630Unit)
		m := &SDM630{Bank: d.Bank, Unit: o.SDM630Unit}
		m.E.ImportKWh = 12345.6
		d.updates = append(d.updates, m.Update)
	}
	if o.InverterUnit != 0 {
		d.Bank.AddUnit(o.InverterUnit)
		inv := &Inverter{Bank: d.Bank, Unit: o.InverterUnit, Serial: o.Serial, DayLength: o.DayLength}
		inv.Init()
		d.updates = append(d.updates, inv.Update)
	}
	if o.DTSU666Unit != 0 {
		d.Bank.AddUnit(o.DTSU666Unit)
		m := &DTSU666{Bank: d.Bank, Unit: o.DTSU666Unit}
		m.E.ImportKWh = 4321.0
		d.updates = append(d.updates, m.Update)
	}
	d.Tick(0)
	return d, nil
}

// Tick moves every device dt seconds on.
func (d *Demo) Tick(dt float64) {
	t := time.Since(d.start).Seconds() + 60 // start a little into the day
	for _, u := range d.updates {
		u(t, dt)
	}
}

// ServeDemo serves the demo plant on the configured transports until ctx ends. ready, when not nil, is
// called with the bound addresses (TCP, RTU over TCP; empty when off) once both listen.
func ServeDemo(ctx context.Context, o DemoOptions, logger *log.Logger, ready func(tcp, rtu string)) error {
	d, err := NewDemo(o)
	if err != nil {
		return err
	}
	var tcpAddr, rtuAddr string
	if o.TCP != "" {
		srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + o.TCP, MaxClients: 64, Timeout: 5 * time.Minute, Logger: log.New(io.Discard, "", 0)}, d.Bank.Handler())
		if err != nil {
			return err
		}
		if err := srv.Start(); err != nil {
			return fmt.Errorf("listening on %s: %w", o.TCP, err)
		}
		defer func() { _ = srv.Stop() }()
		tcpAddr = o.TCP
		logger.Printf("Modbus/TCP on %s", tcpAddr)
	}
	if o.RTUOverTCP != "" {
		srv, err := ListenRTUOverTCP(o.RTUOverTCP, d.Bank)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", o.RTUOverTCP, err)
		}
		defer srv.Close()
		rtuAddr = srv.Addr()
		logger.Printf("RTU over TCP on %s", rtuAddr)
	}
	logger.Printf("units: sdm630=%d inverter=%d dtsu666=%d", o.SDM630Unit, o.InverterUnit, o.DTSU666Unit)
	if ready != nil {
		ready(tcpAddr, rtuAddr)
	}
	if o.Update <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(o.Update)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.Tick(o.Update.Seconds())
		}
	}
}
