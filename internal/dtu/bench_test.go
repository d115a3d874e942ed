package dtu

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkRegistration is the time from a DTU's dial to its session being ready for polls: TCP
// accept, registration read and matched (by regex), the old socket of the same id replaced.
func BenchmarkRegistration(b *testing.B) {
	registered := make(chan string, 1)
	cfg := NewDefaultConfig()
	cfg.Endpoint = "127.0.0.1:0"
	cfg.Registration.Regex = `IMEI:(\d{15})`
	cfg.Heartbeat = PatternConfig{Text: "PING"}
	l, err := New(context.Background(), *cfg, []string{"862951034567890"}, Settings{OnRegister: func(id string) { registered <- id }})
	require.NoError(b, err)
	require.NoError(b, l.Start())
	defer l.Close()
	addr := l.Addr().String()
	packet := []byte("USR-G781 IMEI:862951034567890")
	var conns []net.Conn
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(packet); err != nil {
			b.Fatal(err)
		}
		<-registered
		conns = append(conns, c)
	}
	b.StopTimer()
	for _, c := range conns {
		_ = c.Close()
	}
}
