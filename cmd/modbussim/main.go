// Command modbussim serves simulated Modbus devices for the demo and tests: an Eastron SDM630 meter,
// a CHINT DTSU666 meter and a SunSpec (model 103) PV inverter whose values move plausibly and whose
// energy registers count up. The register layouts are those of the profiles shipped in
// distributions/otelcol-iiot/profiles. It serves Modbus/TCP and, optionally, RTU framing over TCP
// (a transparent serial gateway) from the same memory.
//
//	modbussim -tcp 127.0.0.1:5020 -rtuovertcp 127.0.0.1:5021
//
// Unit ids: -sdm630-unit (default 1), -inverter-unit (2), -dtsu666-unit (3); 0 leaves a device out.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/modbustest"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "modbussim:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("modbussim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tcpAddr := fs.String("tcp", "127.0.0.1:5020", "Modbus/TCP listen address (empty: off)")
	rtuAddr := fs.String("rtuovertcp", "", "RTU-over-TCP listen address (empty: off)")
	sdmUnit := fs.Uint("sdm630-unit", 1, "unit id of the simulated Eastron SDM630 (0: none)")
	invUnit := fs.Uint("inverter-unit", 2, "unit id of the simulated SunSpec inverter (0: none)")
	dtsuUnit := fs.Uint("dtsu666-unit", 3, "unit id of the simulated CHINT DTSU666 (0: none)")
	update := fs.Duration("update", time.Second, "how often the simulated values change")
	day := fs.Duration("day", 10*time.Minute, "length of a simulated day (the inverter follows the sun)")
	serial := fs.String("serial", "SIM0001", "serial number of the simulated inverter")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range []uint{*sdmUnit, *invUnit, *dtsuUnit} {
		if u > 247 {
			return fmt.Errorf("unit ids must be 1 to 247, got %d", u)
		}
	}
	bank := modbustest.NewBank()
	var updates []func(t, dt float64)
	if *sdmUnit != 0 {
		bank.AddUnit(uint8(*sdmUnit))
		m := &modbustest.SDM630{Bank: bank, Unit: uint8(*sdmUnit)}
		m.E.ImportKWh = 12345.6
		updates = append(updates, m.Update)
	}
	if *invUnit != 0 {
		bank.AddUnit(uint8(*invUnit))
		inv := &modbustest.Inverter{Bank: bank, Unit: uint8(*invUnit), Serial: *serial, DayLength: *day}
		inv.Init()
		updates = append(updates, inv.Update)
	}
	if *dtsuUnit != 0 {
		bank.AddUnit(uint8(*dtsuUnit))
		m := &modbustest.DTSU666{Bank: bank, Unit: uint8(*dtsuUnit)}
		m.E.ImportKWh = 4321.0
		updates = append(updates, m.Update)
	}
	start := time.Now()
	tick := func(dt float64) {
		t := time.Since(start).Seconds() + 60 // start a little into the day
		for _, u := range updates {
			u(t, dt)
		}
	}
	tick(0)

	logger := log.New(stderr, "modbussim: ", log.LstdFlags)
	if *tcpAddr != "" {
		srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + *tcpAddr, MaxClients: 64, Timeout: 5 * time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
		if err != nil {
			return err
		}
		if err := srv.Start(); err != nil {
			return fmt.Errorf("listening on %s: %w", *tcpAddr, err)
		}
		defer srv.Stop()
		logger.Printf("Modbus/TCP on %s", *tcpAddr)
	}
	if *rtuAddr != "" {
		srv, err := modbustest.ListenRTUOverTCP(*rtuAddr, bank)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", *rtuAddr, err)
		}
		defer srv.Close()
		logger.Printf("RTU over TCP on %s", srv.Addr())
	}
	logger.Printf("units: sdm630=%d inverter=%d dtsu666=%d", *sdmUnit, *invUnit, *dtsuUnit)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := time.NewTicker(*update)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			tick(update.Seconds())
		}
	}
}
