package opcuareceiver

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

func TestBrowseCollectsVariables(t *testing.T) {
	srv := startSim(t, sim.Config{BulkNodes: 5})
	cfg := testConfig(srv.Endpoint())
	cfg.IncludeNodeID = true
	cfg.Browse = []BrowseConfig{{
		Root:         nsu + "s=Folder.Plant",
		NameFilter:   "^(Temperature|Pressure)$",
		NodeDefaults: NodeDefaults{MetricPrefix: "plant.", Attributes: map[string]string{"site": "a"}},
	}}
	h := startReceiver(t, cfg)
	h.waitValue(t, "plant.Temperature", map[string]string{"opcua.browse_path": "Line1", "site": "a", "opcua.node_id": nsu + "s=Temperature"}, 21.5)
	h.waitValue(t, "plant.Temperature", map[string]string{"opcua.browse_path": "Line2"}, 19)
	h.waitValue(t, "plant.Pressure", map[string]string{"opcua.browse_path": "Line2"}, 0.75)
	for _, p := range h.allPoints() {
		assert.NotContains(t, p.name, "Bulk", "the name filter keeps only matching variables")
		assert.NotEqual(t, "plant.Counter", p.name)
	}
	var browse ptrace.Span
	for _, s := range h.spans() {
		if s.Name() == "opcua.browse" {
			browse = s
		}
	}
	v, _ := browse.Attributes().Get("opcua.nodes")
	assert.EqualValues(t, 4, v.Int())
}

func TestBrowseLimits(t *testing.T) {
	srv := startSim(t, sim.Config{BulkNodes: 50})
	cfg := testConfig(srv.Endpoint())
	cfg.Browse = []BrowseConfig{
		{Root: nsu + "s=Folder.Bulk", MaxNodes: 20, NodeDefaults: NodeDefaults{MetricPrefix: "bulk."}},
		{Root: nsu + "s=Folder.Plant", MaxDepth: 1, NodeDefaults: NodeDefaults{MetricPrefix: "shallow."}}, // only the folders below Plant: no variables
	}
	h := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		n := map[string]bool{}
		for _, p := range h.allPoints() {
			if len(p.name) > 5 && p.name[:5] == "bulk." {
				n[p.name] = true
			}
		}
		return len(n) == 20
	}, 10*time.Second, 20*time.Millisecond, h.summary())
	for _, p := range h.allPoints() {
		assert.NotContains(t, p.name, "shallow.")
	}
	var truncated bool
	for _, s := range h.spans() {
		if s.Name() == "opcua.browse" {
			_, truncated = s.Attributes().Get("opcua.browse_truncated")
		}
	}
	assert.True(t, truncated)
}

// TestReadsAreBatchedWithinTheServerLimit: the gopcua server announces MaxNodesPerRead 32.
func TestReadsAreBatchedWithinTheServerLimit(t *testing.T) {
	srv := startSim(t, sim.Config{BulkNodes: 70})
	cfg := testConfig(srv.Endpoint())
	for i := 0; i < 70; i++ {
		cfg.Nodes = append(cfg.Nodes, NodeConfig{ID: nsu + "s=Bulk." + pad5(i), Name: "bulk", Attributes: map[string]string{"n": strconv.Itoa(i)}})
	}
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.bulk", map[string]string{"n": "69"}, 69)
	h.waitValue(t, "opcua.bulk", map[string]string{"n": "0"}, 0)
	// One poll: reads of 32, 32 and 6 nodes.
	require.Eventually(t, func() bool {
		byTrace := map[string][]int64{}
		for _, s := range h.spans() {
			if s.Name() == "opcua.read" {
				v, _ := s.Attributes().Get("opcua.nodes")
				byTrace[s.TraceID().String()] = append(byTrace[s.TraceID().String()], v.Int())
			}
		}
		for _, sizes := range byTrace {
			if assert.ObjectsAreEqual([]int64{32, 32, 6}, sizes) {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	connect := h.connectSpan(t)
	v, _ := connect.Attributes().Get("opcua.max_nodes_per_read")
	assert.EqualValues(t, 32, v.Int())
}

func pad5(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}

// TestGroupsAreReadOnTheirOwnInterval: a group with a longer interval is read less often. The
// device's clock is manual: 16 polls are 1.6 s of its time, whatever the machine's load.
func TestGroupsAreReadOnTheirOwnInterval(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Poll.Interval = 100 * time.Millisecond
	cfg.Poll.Timeout = 100 * time.Millisecond
	cfg.Nodes = []NodeConfig{{ID: nsu + "s=Temperature", Name: "fast"}}
	cfg.Groups = []GroupConfig{{Name: "slow", Namespace: sim.DefaultNamespaceURI, NodeDefaults: NodeDefaults{Interval: 500 * time.Millisecond, Attributes: map[string]string{"group": "slow"}},
		Nodes: []NodeConfig{{ID: "s=Pressure", Name: "slow"}}}}
	clk := clock.NewManual(time.Now())
	h := startReceiverOn(t, cfg, clk)
	for range 16 {
		h.step(t, clk, cfg.Poll.Interval)
	}
	h.waitValue(t, "opcua.slow", map[string]string{"group": "slow"}, 1.25)
	fast, slow := 0, 0
	for _, p := range h.allPoints() {
		switch p.name {
		case "opcua.fast":
			fast++
		case "opcua.slow":
			slow++
		}
	}
	assert.Greater(t, fast, 2*slow, "fast=%d slow=%d", fast, slow)
	assert.Positive(t, slow)
}

// freezeProxy forwards TCP to a server and can stop forwarding without closing: a silent server.
type freezeProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

// startFreezeProxy listens now; forwarding starts with setTarget.
func startFreezeProxy(t *testing.T) *freezeProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezeProxy{l: l}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.setFrozen(false)
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for {
				p.mu.Lock()
				frozen := p.frozen
				p.mu.Unlock()
				if !frozen {
					break
				}
				time.Sleep(10 * time.Millisecond) //nolint:forbidigo // a frozen link holds the bytes
				if _, err := src.Read(nil); err != nil && !errors.Is(err, io.EOF) {
					return
				}
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *freezeProxy) setTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

func (p *freezeProxy) setFrozen(f bool) {
	p.mu.Lock()
	p.frozen = f
	p.mu.Unlock()
}

// cut closes the connections forwarded so far, as a network that drops them would.
func (p *freezeProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *freezeProxy) endpoint() string {
	return "opc.tcp://" + p.l.Addr().String()
}

// TestHeartbeatDetectsASilentServer: the connection stays open but nothing comes back; the heartbeat
// times out, the session is dropped, and a new one is opened once the server talks again.
func TestHeartbeatDetectsASilentServer(t *testing.T) {
	proxy := startFreezeProxy(t)
	srv := startSim(t, sim.Config{AdvertiseEndpoints: []string{proxy.l.Addr().String()}})
	proxy.setTarget(srv.Endpoint()[len("opc.tcp://"):])
	cfg := testConfig(proxy.endpoint())
	cfg.Mode = ModeSubscribe
	cfg.Poll.Retries = 0
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 21.5)

	proxy.setFrozen(true)
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.heartbeat" && s.Status().Code() == ptrace.StatusCodeError {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	h.waitStale(t, "opcua.temperature", map[string]string{"line": "1"})
	assert.Positive(t, h.errorCount(device.ErrTimeout))

	proxy.setFrozen(false)
	srv.Set("Temperature", 23.0)
	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 23)
	sessions, _ := h.latest("opcua.sessions.established", nil)
	assert.GreaterOrEqual(t, sessions.value, 2.0)
}

func TestOnePollerForBothPipelines(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Nodes = plantNodes()[:1]
	clk := clock.NewManual(time.Now())
	h := startReceiverOn(t, cfg, clk)
	for range 5 { // several polls
		h.step(t, clk, cfg.Poll.Interval)
	}
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	connects := 0
	for _, s := range h.spans() {
		if s.Name() == "opcua.connect" {
			connects++
		}
	}
	assert.Equal(t, 1, connects, "one session serves the metrics and the traces pipeline")
}
