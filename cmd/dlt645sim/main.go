// Command dlt645sim simulates DL/T 645-2007 and -1997 electricity meters on a
// TCP port (like a transparent serial server) and/or a serial device (such as
// one end of a socat pty pair), for tests and demos.
//
//	dlt645sim -listen 127.0.0.1:8899                 # built-in demo meters
//	dlt645sim -config meters.yaml -pty /tmp/dlt645   # also on a new pty pair
//
// With -pty DIR it starts socat itself and serves DIR/ttyA; point the
// collector at DIR/ttyB.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dlt645sim:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", "", "YAML file with the meters (default: built-in demo meters)")
	listen := flag.String("listen", "", "TCP address to serve on, e.g. 127.0.0.1:8899 (overrides the config)")
	device := flag.String("serial", "", "serial device to serve on (overrides the config)")
	ptyDir := flag.String("pty", "", "start a socat pty pair in this directory and serve its ttyA end")
	baud := flag.Int("baud", 0, "pace the TCP line at this baud rate (0: no pacing)")
	noise := flag.Float64("noise", -1, "probability of a burst of line noise before each reply (overrides the config)")
	dump := flag.Bool("print-demo-config", false, "print the built-in demo config and exit")
	flag.Parse()

	if *dump {
		fmt.Print(dlt645sim.DemoConfig)
		return nil
	}
	var cfg *dlt645sim.Config
	var err error
	if *configPath != "" {
		cfg, err = dlt645sim.LoadConfig(*configPath)
	} else {
		cfg, err = dlt645sim.ParseConfig([]byte(dlt645sim.DemoConfig))
	}
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *baud > 0 {
		cfg.BaudRate = *baud
	}
	if *noise >= 0 {
		cfg.Noise.Probability = *noise
	}
	if *device != "" {
		cfg.Serial = &dlt645sim.SerialSettings{Device: *device}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return dlt645sim.Run(ctx, cfg, *ptyDir, os.Stdout)
}
