// Command modbussim serves simulated Modbus devices for the demo and tests: an Eastron SDM630 meter,
// a CHINT DTSU666 meter and a SunSpec (model 103) PV inverter whose values move plausibly and whose
// energy registers count up. The register layouts are those of the profiles shipped in
// distributions/otelcol-iiot/profiles. It serves Modbus/TCP and, optionally, RTU framing over TCP
// (a transparent serial gateway) from the same memory. The devices live in internal/sim/modbus.
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

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "modbussim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
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
	return modbussim.ServeDemo(ctx, modbussim.DemoOptions{
		TCP: *tcpAddr, RTUOverTCP: *rtuAddr,
		SDM630Unit: uint8(*sdmUnit), InverterUnit: uint8(*invUnit), DTSU666Unit: uint8(*dtsuUnit),
		Update: *update, DayLength: *day, Serial: *serial,
	}, log.New(stderr, "modbussim: ", log.LstdFlags), nil)
}
