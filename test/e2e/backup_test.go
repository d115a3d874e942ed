//go:build e2e

package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The built collector polls one Modbus/TCP connection with a backup endpoint (two pymodbus servers):
// the first is killed (SIGKILL), and after failover_after failed connects the backup serves, exact
// values in a real Prometheus, the device up, the spans saying which endpoint served; the first is
// restarted on its port and serves again once failback_after has passed.
func TestBackupEndpoint(t *testing.T) {
	primaryPort, backupPort := freePort(t), freePort(t)
	primary, _ := startPymodbusOn(t, "socket", primaryPort)
	startPymodbusOn(t, "socket", backupPort)
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	first := fmt.Sprintf("tcp://127.0.0.1:%d", primaryPort)
	second := fmt.Sprintf("tcp://127.0.0.1:%d", backupPort)
	data := vars{"Primary": primaryPort, "Backup": backupPort, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint(), "Within": "60s"}
	startCollectorTestdata(t, nil, data, "common.yaml", "backup/config.yaml")
	prom.expectValues(t, "backup/expected.yaml", data)

	// served are the endpoints of the polls so far (in the order the sink received them), and whether
	// each succeeded.
	type poll struct {
		by string
		ok bool
	}
	served := func() []poll {
		var out []poll
		for _, sp := range sink.Spans(t) {
			if sp.Name != "modbus.poll" {
				continue
			}
			by, _ := sp.Attrs["modbus.endpoint.served_by"].(string)
			out = append(out, poll{by: by, ok: sp.Status != "Error"})
		}
		return out
	}
	okBy := func(polls []poll, by string) int {
		n := 0
		for _, p := range polls {
			if p.ok && p.by == by {
				n++
			}
		}
		return n
	}
	require.True(t, assertEventually(30*time.Second, func() bool { return okBy(served(), first) > 0 }),
		"the first endpoint serves, as its spans say")
	require.Zero(t, okBy(served(), second), "the backup is not used while the first serves")
	before := len(served())

	// The first server dies without a word.
	require.NoError(t, primary.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	require.True(t, assertEventually(30*time.Second, func() bool { return okBy(served()[before:], second) > 0 }),
		"the backup serves after failover_after failed connects")
	polls := served()[before:]
	failed := 0
	for _, p := range polls {
		if !p.ok && p.by == first {
			failed++
		}
	}
	assert.GreaterOrEqual(t, failed, 2, "failover_after: 2 failed connects to the first before the switch")
	// Exact values written after the kill: the backup's.
	since := float64(killed.UnixMilli()) / 1000
	require.True(t, assertEventually(30*time.Second, func() bool {
		s, err := prom.QueryE(fmt.Sprintf(`timestamp(backup_e2e_float_abcd{device_id="e2e-backup"}) > %f`, since))
		return err == nil && len(s) == 1
	}), "a sample written after the kill")
	data["Within"] = "10s"
	prom.expectValues(t, "backup/expected.yaml", data)
	errs := prom.Query(t, `iiot_device_poll_errors_total{device_id="e2e-backup",error_type="connection"}`)
	require.Len(t, errs, 1, "the failed connects are counted as connection errors")
	assert.GreaterOrEqual(t, errs[0].Value, 2.0)

	// The first comes back on its port; after failback_after (5s) it serves again.
	switched := len(served())
	startPymodbusOn(t, "socket", primaryPort)
	require.True(t, assertEventually(30*time.Second, func() bool { return okBy(served()[switched:], first) > 0 }),
		"the first endpoint serves again after failback_after")
	tail := served()[switched:]
	assert.Equal(t, second, tail[0].by, "the backup serves until failback_after")
	prom.expectValues(t, "backup/expected.yaml", data)
}
