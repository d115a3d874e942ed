package tenantremotewriteexporter

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// gatedStorage is a real storage extension whose clients count the queue's item writes, hold the
// first one until released, and can fail one write.
type gatedStorage struct {
	storage.Extension

	mu      sync.Mutex
	puts    int // writes of a queue item
	held    bool
	entered chan struct{} // closed when the first item write waits
	release chan struct{} // closing it lets the first item write go on
	failAt  int           // 1-based item write that fails; 0: none
}

var errDiskFull = errors.New("test: disk full")

func newGatedStorage(ext storage.Extension) *gatedStorage {
	return &gatedStorage{Extension: ext, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	c, err := g.Extension.GetClient(ctx, kind, id, name)
	if err != nil {
		return nil, err
	}
	return &gatedClient{Client: c, g: g}, nil
}

func (g *gatedStorage) itemWrites() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.puts
}

type gatedClient struct {
	storage.Client
	g *gatedStorage
}

func (c *gatedClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	item := false
	for _, op := range ops {
		if _, err := strconv.Atoi(op.Key); err == nil && op.Type == storage.Set {
			item = true
		}
	}
	if !item {
		return c.Client.Batch(ctx, ops...)
	}
	g := c.g
	g.mu.Lock()
	g.puts++
	n, hold := g.puts, !g.held
	g.held = true
	g.mu.Unlock()
	if hold {
		close(g.entered)
		<-g.release
	}
	if n == g.failAt {
		return errDiskFull
	}
	return c.Client.Batch(ctx, ops...)
}

// blockedCallers counts the goroutines that wait inside the exporter's ConsumeMetrics (not the one
// held in the storage): from the goroutine dump, so that the test needs nothing of the code under test.
func blockedCallers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, "(*tenantExporter).ConsumeMetrics") && !strings.Contains(g, "(*gatedClient).Batch") &&
			!strings.Contains(header, "[running]") && !strings.Contains(header, "[runnable]") {
			count++
		}
	}
	return count
}

// groupCommitRun has 50 devices' polls arrive while the queue writes a first one (held in the
// storage), as on one poll tick; it returns each call's error and the storage.
func groupCommitRun(t *testing.T, srv *rwServer, failAt int, readOnly bool) ([]error, *gatedStorage, exporter.Metrics) {
	cfg := withTenants(testConfig(srv.URL), nil)
	q := cfg.QueueConfig.Get()
	q.StorageID = &storageID
	q.Sizer = exporterhelper.RequestSizerTypeBytes
	q.QueueSize = 1 << 24
	q.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: 50 * time.Millisecond, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 2048, MaxSize: 8192})
	ext := startFileStorage(t, t.TempDir())
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	gs := newGatedStorage(ext.(storage.Extension))
	gs.failAt = failAt
	exp := startExporter(t, cfg, nil, &testHost{exts: map[component.ID]component.Component{storageID: gs}})

	const devices = 50
	poll := func(d int) error {
		points := make([]point, 5)
		for i := range points {
			points[i] = point{res: res("a", "device.id", fmt.Sprintf("dev-%02d", d)), name: fmt.Sprintf("reading_%d", i), ms: 1000, value: float64(100*d + i)}
		}
		md := metricsOf(points...)
		if readOnly {
			md.MarkReadOnly()
		}
		return exp.ConsumeMetrics(context.Background(), md)
	}
	errs := make([]error, devices)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = poll(0) })
	<-gs.entered
	for d := 1; d < devices; d++ {
		wg.Go(func() { errs[d] = poll(d) })
	}
	require.Eventually(t, func() bool { return blockedCallers() == devices-1 }, waitFor, tick, "the other devices' calls wait for the first write")
	close(gs.release)
	wg.Wait()
	return errs, gs, exp
}

// Calls that arrive while the queue writes are written together in the next write, and each
// returns once its own points are in the queue.
func TestGroupCommitSharesWrites(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("read_only=%v", readOnly), func(t *testing.T) {
			groupCommitShares(t, readOnly)
		})
	}
}

// groupCommitShares runs the 50 calls; read-only data (shared with another consumer) is copied
// into the write, not moved.
func groupCommitShares(t *testing.T, readOnly bool) {
	srv := newRWServer(t)
	errs, gs, _ := groupCommitRun(t, srv, 0, readOnly)
	for d, err := range errs {
		require.NoError(t, err, "device %d", d)
	}
	assert.Equal(t, 2, gs.itemWrites(), "the first poll's write, then one write for the 49 that came during it")
	require.Eventually(t, func() bool { return len(srv.samples("a", "reading_0")) == 50 }, waitFor, tick)
	for i := range 5 {
		got := srv.samples("a", fmt.Sprintf("reading_%d", i))
		require.Len(t, got, 50)
		seen := map[float64]bool{}
		for _, s := range got {
			seen[s.Value] = true
		}
		assert.Len(t, seen, 50, "every device's reading_%d, once", i)
	}
}

// A failed write fails every call it carried, and only those: the queue takes the next calls.
func TestGroupCommitFailedWrite(t *testing.T) {
	srv := newRWServer(t)
	errs, gs, exp := groupCommitRun(t, srv, 2, false)
	require.NoError(t, errs[0], "the first write succeeded")
	for d := 1; d < len(errs); d++ {
		require.ErrorIs(t, errs[d], errDiskFull, "device %d was in the failed write", d)
	}
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "after", ms: 2000, value: 1})))
	require.Eventually(t, func() bool { return len(srv.samples("a", "after")) == 1 }, waitFor, tick, "the queue takes the next call")
	assert.Len(t, srv.samples("a", "reading_0"), 1, "only the first device's points were accepted")
	assert.Equal(t, 3, gs.itemWrites())
}
