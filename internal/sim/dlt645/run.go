package dlt645sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// DemoConfig is what cmd/dlt645sim serves without -config: three 2007 meters (the first with
// records: settlement history, a maximum demand and its time, power-downs, a 15-minute load profile; the second with a
// clock 42 s fast, the third with an error word for the current of phase A and
// follow-up frames past 8 bytes) and one 1997 meter, all animated. The
// receiver config "dlt645/demo" in receiver/dlt645receiver/testdata reads them.
const DemoConfig = `
preamble: 4
meters:
  - address: "000000000001"
    animate: true
    settlement_days: ["0100"]
    profile_interval: 15m
    records:
      "01010000": ["7.5321", "2026-01-15T18:45:00+08:00"]
      "03110001": ["2026-01-10T03:12:00+08:00", "2026-01-10T03:14:30+08:00"]
    values:
      "00010001": 12000.5
      "00010002": 11000.25
      "03110000": 3
      "00000000": 12345.67
      "00010000": 12345.67
      "00020000": 0
      "00010100": 4000.12
      "00010200": 5000.55
      "00010300": 3345
      "00010400": 0
      "02010100": 220.1
      "02010200": 221.3
      "02010300": 219.8
      "02020100": 5.5
      "02020200": 5.25
      "02020300": 4.75
      "02030000": 3.6666
      "02030100": 1.2
      "02030200": 1.25
      "02030300": 1.2166
      "02040000": -0.5123
      "02050000": 3.7
      "02060000": 0.991
      "02800002": 50.01
  - address: "000000000002"
    animate: true
    clock_offset: 42s
    values:
      "00010000": 888.8
      "00020000": 12.5
      "02010100": 230.2
      "02020100": -2.5
      "02030000": -0.575
      "02060000": -0.95
      "02800002": 49.98
  - address: "000000000003"
    animate: true
    max_frame_data: 8
    values:
      "00010000": 42
      "00010100": 10
      "00010200": 12
      "00010300": 20
      "00010400": 0
      "02010100": 229.9
      "02800002": 50
    errors:
      "02020100": 2
  - address: "000000001997"
    version: "1997"
    animate: true
    values:
      "9010": 2345.6
      "9020": 0.5
      "B611": 231
      "B621": 4.35
      "B630": 1.0005
      "B650": 0.987
`

// Run serves the meters of cfg on its TCP address and/or serial device until ctx ends, and animates
// them. With ptyDir it first starts a socat pty pair there and serves its ttyA end. It reports what it
// serves and, at the end, its counters on out.
func Run(ctx context.Context, cfg *Config, ptyDir string, out io.Writer) error {
	meters, animated, err := cfg.BuildMeters()
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if ptyDir != "" {
		if err := os.MkdirAll(ptyDir, 0o750); err != nil {
			return err
		}
		pair, err := NewPTYPair(ctx, ptyDir)
		if err != nil {
			return err
		}
		defer pair.Close()
		cfg.Serial = &SerialSettings{Device: pair.A}
		fmt.Fprintf(out, "pty pair: simulator on %s, point the collector at %s\n", pair.A, pair.B)
	}
	if cfg.Listen == "" && cfg.Serial == nil {
		cfg.Listen = "127.0.0.1:8899"
	}

	srv := NewServer(cfg.Options(), meters...)
	defer srv.Close()
	for _, m := range meters {
		fmt.Fprintf(out, "meter %s (DL/T 645-%s)\n", m.Address(), m.Version())
	}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if cfg.Listen != "" {
		l, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "serving TCP on %s\n", l.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- srv.Serve(l)
		}()
	}
	if cfg.Serial != nil {
		sc := dlt645.DefaultSerialConfig(cfg.Serial.Device)
		if cfg.Serial.BaudRate > 0 {
			sc.BaudRate = cfg.Serial.BaudRate
		}
		if cfg.Serial.Parity != "" {
			sc.Parity = cfg.Serial.Parity
		}
		fmt.Fprintf(out, "serving serial device %s\n", sc.Device)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A pty whose other end is closed and reopened by the collector
			// ends the line; serve it again.
			for ctx.Err() == nil {
				err := srv.ServeSerial(ctx, sc)
				if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
					fmt.Fprintln(out, "serial line:", err)
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		Animate(ctx, time.Second, animated...)
	}()

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	stop()
	_ = srv.Close()
	wg.Wait()
	st := srv.Stats()
	fmt.Fprintf(out, "served %d requests, %d replies, %d noise bytes\n", st.Requests, st.Replies, st.NoiseBytes)
	return nil
}
