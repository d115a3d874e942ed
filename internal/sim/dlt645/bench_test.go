package dlt645sim

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// BenchmarkBusEfficiency polls N meters x M identifiers through the
// simulator, which paces the line at the baud rate (a request takes its wire
// time to arrive, a reply is sent at line speed), and reports the time per
// round against the wire-time lower bound computed from the frame sizes:
// x-wire = measured / lower bound.
func BenchmarkBusEfficiency(b *testing.B) {
	for _, tc := range []struct {
		baud, meters, ids int
		gap               time.Duration
	}{
		{9600, 3, 4, 0},
		{9600, 3, 4, 5 * time.Millisecond},
		{2400, 3, 4, 15 * time.Millisecond},
		{9600, 8, 8, 5 * time.Millisecond},
	} {
		b.Run(fmt.Sprintf("baud=%d/meters=%d/ids=%d/gap=%s", tc.baud, tc.meters, tc.ids, tc.gap), func(b *testing.B) {
			serial := dlt645.DefaultSerialConfig("")
			serial.BaudRate = tc.baud
			charTime := serial.CharTime()
			dis := []dlt645.DI{0x00010000, 0x02010100, 0x02020100, 0x02030000, 0x02040000, 0x02050000, 0x02060000, 0x02800002}[:tc.ids]
			var meters []*Meter
			for i := range tc.meters {
				m := NewMeter(dlt645.Address{byte(i + 1)}, dlt645.V2007)
				for _, di := range dis {
					if err := m.Set(di, 1); err != nil {
						b.Fatal(err)
					}
				}
				meters = append(meters, m)
			}
			const preamble = 4
			srv := NewServer(Options{CharTime: charTime, Preamble: preamble}, meters...)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = srv.Serve(l) }()
			defer srv.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cl := dlt645.NewClient(c)
			cl.Preamble = preamble
			cl.Gap = tc.gap
			cl.CharTime = charTime
			cl.Timeout = 500 * time.Millisecond

			// Wire time of one round: every request and reply with preambles.
			var bytes int
			for _, m := range meters {
				for _, di := range dis {
					req := dlt645.ReadRequest(dlt645.V2007, m.Address(), di)
					v, _ := m.value(di, time.Now())
					rep := dlt645.ReadResponse(dlt645.V2007, m.Address(), di, v, false)
					bytes += req.Len(preamble) + rep.Len(preamble)
				}
			}
			bound := time.Duration(bytes) * charTime
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				for _, m := range meters {
					for _, di := range dis {
						if _, err := cl.Read(ctx, dlt645.V2007, m.Address(), di); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per.Milliseconds()), "ms/round")
			b.ReportMetric(float64(bound.Milliseconds()), "wire-ms/round")
			b.ReportMetric(float64(per)/float64(bound), "x-wire")
		})
	}
}

// BenchmarkLoadProfileRead reads load-profile records of every class by start time and count through
// a line paced at the baud rate (follow-up frames of 200 value bytes), and reports records per
// second: what a backfill of missed intervals can read back.
func BenchmarkLoadProfileRead(b *testing.B) {
	for _, tc := range []struct{ baud, count int }{{2400, 4}, {2400, 10}, {9600, 10}} {
		b.Run(fmt.Sprintf("baud=%d/records=%d", tc.baud, tc.count), func(b *testing.B) {
			serial := dlt645.DefaultSerialConfig("")
			serial.BaudRate = tc.baud
			charTime := serial.CharTime()
			m := NewMeter(dlt645.Address{1}, dlt645.V2007)
			start := time.Date(2024, 3, 5, 0, 0, 0, 0, time.Local)
			for i := range 96 {
				vals := [6][]float64{{220, 221, 219, 5, 5, 5, 50}, {3, 1, 1, 1, 0.5, 0.2, 0.2, 0.1}, {0.99, 0.99, 0.99, 0.99},
					{float64(1000 + i), 0, 0, 0}, {1, 0, 0, 0}, {3, 0.5}}
				if err := m.AddProfileRecord(start.Add(time.Duration(i)*15*time.Minute), vals); err != nil {
					b.Fatal(err)
				}
			}
			const preamble = 4
			srv := NewServer(Options{CharTime: charTime, Preamble: preamble}, m)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = srv.Serve(l) }()
			defer srv.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cl := dlt645.NewClient(c)
			cl.Preamble, cl.CharTime, cl.Gap, cl.Timeout = preamble, charTime, 4*charTime, time.Second
			ctx := context.Background()
			b.ResetTimer()
			recs := 0
			for i := 0; i < b.N; i++ {
				got, _, err := cl.ReadLoadProfile(ctx, m.Address(), 0x06000001, tc.count, start.Add(time.Duration(i%80)*15*time.Minute))
				if err != nil {
					b.Fatal(err)
				}
				recs += len(got)
			}
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
