package serialbus

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var line8N1 = transport.Line{BaudRate: 9600, DataBits: 8, Parity: transport.ParityNone, StopBits: 1}

func TestJoinSharesOnePort(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "ttyX")
	require.NoError(t, os.WriteFile(dev, nil, 0o600))
	alias := filepath.Join(dir, "bus")
	require.NoError(t, os.Symlink(dev, alias))

	r := NewRegistry()
	a, err := r.Join(User{Name: "receiver modbus connections[0]", Serial: true, Address: dev, Line: line8N1}, clock.Real{})
	require.NoError(t, err)
	// Another name of the same device (a udev symlink) is the same port.
	b, err := r.Join(User{Name: "receiver dlt645 buses[0]", Serial: true, Address: alias, Line: line8N1}, clock.Real{})
	require.NoError(t, err)
	require.Same(t, a.PollLink(), b.PollLink(), "one poll link: one transaction at a time across users")
	require.Equal(t, 2, a.Users())

	other := line8N1
	other.BaudRate, other.Parity = 2400, transport.ParityEven
	_, err = r.Join(User{Name: "receiver dlt645/2 buses[1]", Serial: true, Address: dev, Line: other}, clock.Real{})
	require.EqualError(t, err, "serial port "+dev+": receiver modbus connections[0] uses 9600 baud 8N1 but receiver dlt645/2 buses[1] uses 2400 baud 8E1: the users of one port must use the same line settings")

	_, err = r.Join(User{Name: "receiver modbus connections[0]", Serial: true, Address: dev, Line: line8N1}, clock.Real{})
	require.ErrorContains(t, err, "names it twice")

	b.Leave()
	require.Equal(t, 1, a.Users())
	_, err = b.Open(context.Background(), time.Second)
	require.ErrorIs(t, err, net.ErrClosed, "a user that left does not open the port again")
	a.Leave()
	require.Empty(t, r.ports, "the last user closes the port")
}

func TestSerialServerBaudMustAgree(t *testing.T) {
	r := NewRegistry()
	a, err := r.Join(User{Name: "a", Address: "127.0.0.1:4001", Line: transport.Line{BaudRate: 9600}}, clock.Real{})
	require.NoError(t, err)
	defer a.Leave()
	b, err := r.Join(User{Name: "b", Address: "127.0.0.1:4001"}, clock.Real{})
	require.NoError(t, err, "a user that does not know the speed agrees with any")
	defer b.Leave()
	_, err = r.Join(User{Name: "c", Address: "127.0.0.1:4001", Line: transport.Line{BaudRate: 19200}}, clock.Real{})
	require.EqualError(t, err, "serial server 127.0.0.1:4001: a uses baud_rate 9600 but c uses 19200: the users of one line must agree")
}

// A user that hands the line over with a reply still coming (its read timed out) leaves the doubt to
// the port: the next user's send first waits the line out, so it never reads the late bytes.
func TestHandOverDrainsLateReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	srvc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			srvc <- c
		}
		close(srvc)
	}()
	r := NewRegistry()
	a, err := r.Join(User{Name: "a", Address: ln.Addr().String(), Gap: 5 * time.Millisecond}, clock.Real{})
	require.NoError(t, err)
	defer a.Leave()
	b, err := r.Join(User{Name: "b", Address: ln.Addr().String(), Gap: 5 * time.Millisecond}, clock.Real{})
	require.NoError(t, err)
	defer b.Leave()

	la, err := a.Open(context.Background(), time.Second)
	require.NoError(t, err)
	srv := <-srvc
	require.NotNil(t, srv)
	defer srv.Close()
	_, err = la.Write([]byte("request-a"))
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, err := srv.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "request-a", string(buf[:n]))
	require.NoError(t, la.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = la.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	// The late reply to a's request arrives after a gave up.
	_, err = srv.Write([]byte("late-for-a"))
	require.NoError(t, err)

	lb, err := b.Open(context.Background(), time.Second)
	require.NoError(t, err)
	_, err = lb.Write([]byte("request-b"))
	require.NoError(t, err)
	n, err = srv.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "request-b", string(buf[:n]))
	_, err = srv.Write([]byte("reply-b"))
	require.NoError(t, err)
	require.NoError(t, lb.SetReadDeadline(time.Now().Add(time.Second)))
	n, err = lb.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "reply-b", string(buf[:n]), "b reads its own reply, not a's late one")
}

// A backup endpoint's transactions take turns on its first endpoint's poll link: its port may be
// shared by connections with the same first port (they take turns there too), not by another
// connection that polls it on its own link.
func TestBackupPortSharing(t *testing.T) {
	r := NewRegistry()
	a, err := r.Join(User{Name: "receiver modbus connections[0].endpoints[1]", Address: "127.0.0.1:4002", First: "127.0.0.1:4001"}, clock.Real{})
	require.NoError(t, err)
	defer a.Leave()
	b, err := r.Join(User{Name: "receiver dlt645 buses[0].endpoints[1]", Address: "127.0.0.1:4002", First: "127.0.0.1:4001"}, clock.Real{})
	require.NoError(t, err, "the same first port: both take turns on its link")
	defer b.Leave()
	_, err = r.Join(User{Name: "receiver dlt645/2 buses[0]", Address: "127.0.0.1:4002"}, clock.Real{})
	require.EqualError(t, err, "serial server 127.0.0.1:4002: receiver modbus connections[0].endpoints[1] and receiver dlt645/2 buses[0] use it with different first endpoints (127.0.0.1:4001, 127.0.0.1:4002): a backup endpoint's port may be shared only by connections whose endpoints start with the same port")
}
