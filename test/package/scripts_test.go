// Copyright The otelcol-iiot Authors
// SPDX-License-Identifier: Apache-2.0

//go:build package

package packagetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// harness runs one maintainer script in a private mount namespace: /run and /var/lib are empty tmpfs
// (with /run/systemd/system when withSystemd), /etc/passwd and /etc/group are copies that know the
// package's user, and systemctl is a stand-in that records its arguments (systemd itself cannot run
// here; TestDebInstall exercises the real one where it runs). Nothing outside the namespace changes.
const harness = `set -e
mount -t tmpfs none /run
if [ "$WITH_SYSTEMD" = 1 ]; then mkdir -p /run/systemd/system; fi
mount -t tmpfs none /var/lib
mkdir -p "/var/lib/$NAME"; touch "/var/lib/$NAME/queued"
mount --bind "$DIR/passwd" /etc/passwd
mount --bind "$DIR/group" /etc/group
PATH="$DIR/bin:$PATH" sh "$SCRIPT" "$@"
if [ -e "/var/lib/$NAME/queued" ]; then echo "state kept" >>"$DIR/calls"; else echo "state removed" >>"$DIR/calls"; fi
`

// TestMaintainerScriptArguments runs every script with dpkg's and rpm's arguments, with and without a
// running systemd, and checks what it asks systemctl to do and whether the queues survive.
func TestMaintainerScriptArguments(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the scripts run in a private mount namespace (unshare)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not found")
	}
	type tc struct {
		script  string
		args    []string
		systemd bool
		want    []string // systemctl calls, then what happened to the state directory
	}
	for _, dist := range []string{"otelcol-iiot", "otelcol-iiot-gateway"} {
		unit := dist + ".service"
		cases := []tc{
			// First install: enabled and started only with a running systemd.
			{"postinstall.sh", []string{"configure", ""}, true, []string{"daemon-reload", "enable " + unit, "start " + unit, "state kept"}},
			{"postinstall.sh", []string{"1"}, true, []string{"daemon-reload", "enable " + unit, "start " + unit, "state kept"}},
			{"postinstall.sh", []string{"configure", ""}, false, []string{"state kept"}},
			{"postinstall.sh", []string{"1"}, false, []string{"state kept"}},
			// Upgrade: restarted if it runs, never enabled again (the administrator may have disabled it).
			{"postinstall.sh", []string{"configure", "0.1.0-1"}, true, []string{"daemon-reload", "try-restart " + unit, "state kept"}},
			{"postinstall.sh", []string{"2"}, true, []string{"daemon-reload", "try-restart " + unit, "state kept"}},
			// Removal stops and disables; the old package's prerm/%preun during an upgrade does nothing.
			{"preremove.sh", []string{"remove"}, true, []string{"stop " + unit, "disable --quiet " + unit, "state kept"}},
			{"preremove.sh", []string{"0"}, true, []string{"stop " + unit, "disable --quiet " + unit, "state kept"}},
			{"preremove.sh", []string{"remove"}, false, []string{"disable --quiet " + unit, "state kept"}},
			{"preremove.sh", []string{"upgrade", "0.1.0-1"}, true, []string{"state kept"}},
			{"preremove.sh", []string{"1"}, true, []string{"state kept"}},
			// Only dpkg's purge deletes the queues; rpm -e (0) and upgrades keep them.
			{"postremove.sh", []string{"remove"}, true, []string{"daemon-reload", "state kept"}},
			{"postremove.sh", []string{"purge"}, true, []string{"daemon-reload", "state removed"}},
			{"postremove.sh", []string{"purge"}, false, []string{"state removed"}},
			{"postremove.sh", []string{"0"}, true, []string{"daemon-reload", "state kept"}},
			{"postremove.sh", []string{"1"}, true, []string{"daemon-reload", "state kept"}},
			{"postremove.sh", []string{"upgrade", "0.1.0-1"}, false, []string{"state kept"}},
		}
		for _, c := range cases {
			name := fmt.Sprintf("%s/%s %s systemd=%v", dist, c.script, strings.Join(c.args, " "), c.systemd)
			t.Run(name, func(t *testing.T) {
				calls := runScript(t, dist, c.script, c.systemd, c.args...)
				require.Equal(t, c.want, calls)
			})
		}
	}
}

func runScript(t *testing.T, dist, script string, withSystemd bool, args ...string) []string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin", "systemctl"),
		[]byte("#!/bin/sh\necho \"$*\" >>\"$DIR/calls\"\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "calls"), nil, 0o644))
	// The package's user and group, as preinstall creates them (uid/gid outside the system range used here).
	for _, f := range []struct{ path, line string }{
		{"passwd", dist + ":x:64990:64990::/var/lib/" + dist + ":/usr/sbin/nologin\n"},
		{"group", dist + ":x:64990:\n"},
	} {
		b, err := os.ReadFile("/etc/" + f.path)
		require.NoError(t, err)
		if !strings.Contains("\n"+string(b), "\n"+dist+":") {
			b = append(b, f.line...)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, f.path), b, 0o644))
	}
	scriptPath, err := filepath.Abs(filepath.Join(repoRoot, "distributions", dist, "packaging", script))
	require.NoError(t, err)
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", harness, "harness"}, args...)...)
	ws := "0"
	if withSystemd {
		ws = "1"
	}
	cmd.Env = append(os.Environ(), "DIR="+dir, "NAME="+dist, "SCRIPT="+scriptPath, "WITH_SYSTEMD="+ws)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", script, strings.Join(args, " "), out)
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
