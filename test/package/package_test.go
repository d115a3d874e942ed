// Copyright The otelcol-iiot Authors
// SPDX-License-Identifier: Apache-2.0

//go:build package

// Package packagetest checks the packages `make package` builds: the amd64 edge .deb is installed for
// real with dpkg (root only: CI runs as root on a throw-away Debian 12 VM), linted with lintian; the
// .rpm is checked with rpm -qp; the container recipes are checked without a Docker engine.
// `make package-test` builds the packages and runs these tests with OTELCOL_IIOT_DEB and OTELCOL_IIOT_RPM.
package packagetest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	pkgName  = "otelcol-iiot"
	repoRoot = "../.."
	confDir  = "/etc/otelcol-iiot"
	stateDir = "/var/lib/otelcol-iiot"
	envFile  = confDir + "/otelcol-iiot.conf"
)

// entry is one path the package must install, with its owner and mode.
type entry struct {
	path     string
	mode     os.FileMode // including os.ModeDir for directories
	owner    string
	group    string
	conffile bool
	src      string // repository file whose bytes it must have ("" = not compared)
	debOnly  bool
	rpmOnly  bool
}

// expectedEntries is what the edge package installs. Device files and profiles come from the repository,
// so a new one must be packaged too.
func expectedEntries(t *testing.T) []entry {
	t.Helper()
	d := filepath.Join(repoRoot, "distributions", pkgName)
	es := []entry{
		{path: "/usr/bin/otelcol-iiot", mode: 0o755, owner: "root", group: "root"},
		{path: "/usr/bin/otelcol-iiot-probe", mode: 0o755, owner: "root", group: "root"},
		{path: "/lib/systemd/system/otelcol-iiot.service", mode: 0o644, owner: "root", group: "root", src: filepath.Join(d, "otelcol-iiot.service"), debOnly: true},
		{path: "/usr/lib/systemd/system/otelcol-iiot.service", mode: 0o644, owner: "root", group: "root", src: filepath.Join(d, "otelcol-iiot.service"), rpmOnly: true},
		{path: confDir, mode: os.ModeDir | 0o755, owner: "root", group: "root"},
		{path: confDir + "/devices", mode: os.ModeDir | 0o755, owner: "root", group: "root"},
		{path: confDir + "/profiles", mode: os.ModeDir | 0o755, owner: "root", group: "root"},
		// The env file holds the backends' credentials.
		{path: envFile, mode: 0o640, owner: "root", group: pkgName, conffile: true, src: filepath.Join(d, "otelcol-iiot.conf")},
		{path: confDir + "/config.yaml", mode: 0o644, owner: "root", group: "root", conffile: true, src: filepath.Join(d, "config.yaml")},
		{path: confDir + "/uplink.yaml", mode: 0o644, owner: "root", group: "root", conffile: true, src: filepath.Join(d, "uplink.yaml")},
		{path: confDir + "/registry.yaml", mode: 0o644, owner: "root", group: "root", conffile: true, src: filepath.Join(d, "registry.yaml")},
		{path: "/usr/share/doc/otelcol-iiot/copyright", mode: 0o644, owner: "root", group: "root", src: filepath.Join(d, "packaging", "copyright")},
		{path: "/usr/share/doc/otelcol-iiot/changelog.gz", mode: 0o644, owner: "root", group: "root"},
		{path: "/usr/share/doc/otelcol-iiot/changelog.Debian.gz", mode: 0o644, owner: "root", group: "root", debOnly: true},
		{path: "/usr/share/man/man1/otelcol-iiot.1.gz", mode: 0o644, owner: "root", group: "root"},
		{path: "/usr/share/man/man1/otelcol-iiot-probe.1.gz", mode: 0o644, owner: "root", group: "root"},
		{path: "/usr/share/lintian/overrides/otelcol-iiot", mode: 0o644, owner: "root", group: "root", src: filepath.Join(d, "packaging", "lintian-overrides"), debOnly: true},
		{path: "/usr/share/otelcol-iiot/prometheus/otelcol-iiot.rules.yml", mode: 0o644, owner: "root", group: "root", src: filepath.Join(d, "prometheus", "otelcol-iiot.rules.yml")},
	}
	for _, sub := range []struct{ dir, glob string }{{"devices", "*.yaml"}, {"profiles", "*.yaml"}} {
		files, err := filepath.Glob(filepath.Join(d, sub.dir, sub.glob))
		require.NoError(t, err)
		require.NotEmpty(t, files, "no %s/%s in the repository", sub.dir, sub.glob)
		for _, f := range files {
			es = append(es, entry{path: confDir + "/" + sub.dir + "/" + filepath.Base(f), mode: 0o644, owner: "root", group: "root", conffile: true, src: f})
		}
	}
	dashboards, err := filepath.Glob(filepath.Join(d, "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dashboards)
	for _, f := range dashboards {
		es = append(es, entry{path: "/usr/share/otelcol-iiot/dashboards/" + filepath.Base(f), mode: 0o644, owner: "root", group: "root", src: f})
	}
	return es
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

func packageFile(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run `make package-test`, which builds the package and sets it", env)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(repoRoot, p)
	}
	_, err := os.Stat(p)
	require.NoError(t, err)
	return p
}

func installed(name string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", name).Output()
	return err == nil && string(out) == "installed"
}

// readEnvFile reads a systemd EnvironmentFile: KEY=VALUE lines, # comments, optional quotes.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: line without '=': %q", path, line)
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	require.NoError(t, sc.Err())
	return env
}

func fileOwner(t *testing.T, fi os.FileInfo) (string, string) {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	require.True(t, ok)
	u, err := user.LookupId(strconv.Itoa(int(st.Uid)))
	require.NoError(t, err)
	g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	require.NoError(t, err)
	return u.Username, g.Name
}

func checkEntries(t *testing.T, es []entry) {
	t.Helper()
	for _, e := range es {
		if e.rpmOnly {
			continue
		}
		fi, err := os.Lstat(e.path)
		if !assertNoErr(t, err, "installed file %s", e.path) {
			continue
		}
		require.Equal(t, e.mode.String(), fi.Mode().String(), "mode of %s", e.path)
		owner, group := fileOwner(t, fi)
		require.Equal(t, e.owner+":"+e.group, owner+":"+group, "owner of %s", e.path)
		if e.src != "" {
			want, err := os.ReadFile(e.src)
			require.NoError(t, err)
			got, err := os.ReadFile(e.path)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "%s differs from %s", e.path, e.src)
		}
	}
}

func assertNoErr(t *testing.T, err error, msg string, args ...any) bool {
	t.Helper()
	if err != nil {
		t.Errorf(msg+": %v", append(args, err)...)
		return false
	}
	return true
}

// validateAs runs the installed binary's `validate` with the installed env file's variables (and
// nothing else from this process's environment), as the service user, the way the unit starts it.
func validateAs(t *testing.T, u *user.User, extraArgs ...string) {
	t.Helper()
	env := readEnvFile(t, envFile)
	args := append([]string{"validate"}, strings.Fields(env["OTELCOL_OPTIONS"])...)
	args = append(args, extraArgs...)
	cmd := exec.Command("/usr/bin/otelcol-iiot", args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	uid, err := strconv.Atoi(u.Uid)
	require.NoError(t, err)
	gid, err := strconv.Atoi(u.Gid)
	require.NoError(t, err)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if g, err := user.LookupGroup("dialout"); err == nil {
		n, _ := strconv.Atoi(g.Gid)
		cred.Groups = []uint32{uint32(n)}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "otelcol-iiot %s as %s:\n%s", strings.Join(args, " "), u.Username, out)
}

func systemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// TestDebInstall installs the .deb with dpkg, checks what it installed and that the collector
// validates its installed configuration as the service user, reinstalls it over an edited conffile
// and queued data, then removes and purges it.
func TestDebInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: dpkg -i installs into this system (CI runs `make test` as root on a throw-away Debian 12 VM)")
	}
	if systemdRunning() && os.Getenv("OTELCOL_IIOT_PACKAGE_TEST_SYSTEMD") != "1" {
		// With systemd running, postinst enables and starts the real service on this host; that path
		// has not been run yet, so it is opt-in rather than a surprise in CI.
		t.Skip("systemd is running: installing would start the service on this host; set OTELCOL_IIOT_PACKAGE_TEST_SYSTEMD=1 to run it")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not found: the install test needs Debian or Ubuntu")
	}
	deb := packageFile(t, "OTELCOL_IIOT_DEB")
	// Never touch a real installation: its configuration would be purged at the end.
	require.False(t, installed(pkgName), "package %s is already installed on this machine; the test installs and purges it, so run it on a throw-away machine (or `dpkg --purge %s` first)", pkgName, pkgName)

	run(t, "dpkg", "-i", deb)
	t.Cleanup(func() {
		if installed(pkgName) || exec.Command("dpkg-query", "-W", pkgName).Run() == nil {
			if out, err := exec.Command("dpkg", "--purge", pkgName).CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge %s: %v\n%s", pkgName, err, out)
			}
		}
	})
	require.True(t, installed(pkgName))

	es := expectedEntries(t)
	t.Run("files", func(t *testing.T) { checkEntries(t, es) })

	t.Run("nothing else", func(t *testing.T) {
		known := map[string]bool{}
		for _, e := range es {
			known[e.path] = true
		}
		for _, p := range strings.Split(strings.TrimSpace(run(t, "dpkg", "-L", pkgName)), "\n") {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() { // Stat: /lib is a symlink on merged-/usr systems
				require.True(t, known[p], "%s is installed but not expected by this test", p)
			}
		}
	})

	t.Run("conffiles", func(t *testing.T) {
		out := run(t, "dpkg-query", "-W", "-f=${Conffiles}", pkgName)
		var conf []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				conf = append(conf, f[0])
			}
		}
		var want []string
		for _, e := range es {
			if e.conffile {
				want = append(want, e.path)
			}
		}
		require.ElementsMatch(t, want, conf)
	})

	u, err := user.Lookup(pkgName)
	require.NoError(t, err, "system user %s", pkgName)
	t.Run("user", func(t *testing.T) {
		uid, err := strconv.Atoi(u.Uid)
		require.NoError(t, err)
		require.Less(t, uid, 1000, "%s must be a system user", pkgName)
		g, err := user.LookupGroupId(u.Gid)
		require.NoError(t, err)
		require.Equal(t, pkgName, g.Name, "primary group")
		require.Equal(t, stateDir, u.HomeDir)
		passwd, err := os.ReadFile("/etc/passwd")
		require.NoError(t, err)
		require.Contains(t, string(passwd), "\n"+pkgName+":", "user in /etc/passwd")
		for _, l := range strings.Split(string(passwd), "\n") {
			if strings.HasPrefix(l, pkgName+":") {
				require.True(t, strings.HasSuffix(l, ":/usr/sbin/nologin"), "login shell: %s", l)
			}
		}
		if dialout, err := user.LookupGroup("dialout"); err == nil {
			gids, err := u.GroupIds()
			require.NoError(t, err)
			require.Contains(t, gids, dialout.Gid, "%s must be in dialout (serial buses)", pkgName)
		}
	})

	t.Run("state directory", func(t *testing.T) {
		fi, err := os.Stat(stateDir)
		require.NoError(t, err)
		require.Equal(t, (os.ModeDir | 0o750).String(), fi.Mode().String())
		owner, group := fileOwner(t, fi)
		require.Equal(t, pkgName+":"+pkgName, owner+":"+group)
	})

	t.Run("validate installed config as the service user", func(t *testing.T) {
		validateAs(t, u)
		// The uplink overlay on top, as the env file's comment and the README describe.
		validateAs(t, u, "--config="+confDir+"/uplink.yaml")
	})

	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		t.Run("systemd-analyze verify", func(t *testing.T) {
			out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/otelcol-iiot.service").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify complains")
		})
	}

	if systemdRunning() {
		t.Run("service enabled and running", func(t *testing.T) {
			require.Equal(t, "enabled", strings.TrimSpace(run(t, "systemctl", "is-enabled", pkgName)))
			env := readEnvFile(t, envFile)
			health := "http://" + env["OTELCOL_IIOT_HEALTH_CHECK_ENDPOINT"] + "/"
			require.Eventually(t, func() bool {
				resp, err := http.Get(health) //nolint:noctx // a test poll
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}, 60*time.Second, 500*time.Millisecond, "health check %s of the started service (journalctl -u %s)", health, pkgName)
			pid := strings.TrimSpace(run(t, "systemctl", "show", "-p", "MainPID", "--value", pkgName))
			run(t, "systemctl", "reload", pkgName)
			require.Eventually(t, func() bool {
				resp, err := http.Get(health) //nolint:noctx // a test poll
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}, 60*time.Second, 500*time.Millisecond, "health check after reload")
			require.Equal(t, pid, strings.TrimSpace(run(t, "systemctl", "show", "-p", "MainPID", "--value", pkgName)), "reload (SIGHUP) must not restart the process")
		})
	} else {
		t.Run("not enabled without systemd", func(t *testing.T) {
			matches, err := filepath.Glob("/etc/systemd/system/*.wants/otelcol-iiot.service")
			require.NoError(t, err)
			require.Empty(t, matches, "the service was enabled on a machine without a running systemd")
		})
	}

	// An administrator's edits and the queued data survive a reinstall (dpkg: prerm upgrade, preinst
	// upgrade, postrm upgrade, postinst configure <version>).
	t.Run("reinstall keeps edits and queues", func(t *testing.T) {
		const edit = "\n# edited on site by the package test\n"
		f, err := os.OpenFile(confDir+"/registry.yaml", os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteString(edit)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		marker := filepath.Join(stateDir, "queued-by-test")
		require.NoError(t, os.WriteFile(marker, []byte("x"), 0o600))

		run(t, "dpkg", "-i", deb)

		got, err := os.ReadFile(confDir + "/registry.yaml")
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(string(got), edit), "the edited registry.yaml was replaced")
		_, err = os.Stat(marker)
		require.NoError(t, err, "queued data lost on reinstall")
		fi, err := os.Stat(envFile)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o640).String(), fi.Mode().String(), "env file mode after reinstall")
	})

	t.Run("remove keeps configuration and queues", func(t *testing.T) {
		run(t, "dpkg", "--remove", pkgName)
		_, err := os.Stat("/usr/bin/otelcol-iiot")
		require.True(t, os.IsNotExist(err), "binary still there after dpkg --remove")
		_, err = os.Stat("/lib/systemd/system/otelcol-iiot.service")
		require.True(t, os.IsNotExist(err), "unit still there after dpkg --remove")
		_, err = os.Stat(envFile)
		require.NoError(t, err, "dpkg --remove must keep the configuration")
		_, err = os.Stat(stateDir)
		require.NoError(t, err, "dpkg --remove must keep the queues")
	})

	t.Run("purge removes everything but the user", func(t *testing.T) {
		run(t, "dpkg", "--purge", pkgName)
		require.Error(t, exec.Command("dpkg-query", "-W", pkgName).Run(), "dpkg still knows %s after --purge", pkgName)
		for _, p := range []string{confDir, stateDir, "/usr/share/otelcol-iiot", "/usr/share/doc/otelcol-iiot"} {
			_, err := os.Stat(p)
			require.True(t, os.IsNotExist(err), "%s still there after dpkg --purge", p)
		}
		// Debian policy: the system user stays (its uid may own files elsewhere); the README says so.
		_, err := user.Lookup(pkgName)
		require.NoError(t, err)
	})
}

// TestDebLintian lints the .deb: no error and no warning; every override in the package is used.
func TestDebLintian(t *testing.T) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatal("lintian not found (Debian package lintian): run `make deps`")
	}
	deb := packageFile(t, "OTELCOL_IIOT_DEB")
	out, err := exec.Command("lintian", "--info", "--fail-on", "error,warning", deb).CombinedOutput()
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	require.NoError(t, err, "lintian found errors or warnings")
	require.NotContains(t, string(out), "unused-override", "a lintian override no longer matches: remove it")
	require.NotContains(t, string(out), "mismatched-override")
}

// TestRPM checks the .rpm without installing it: digests, files with owners, modes and config flags,
// requirements and scriptlets.
func TestRPM(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Fatal("rpm not found (Debian package rpm): run `make deps`")
	}
	rpm := packageFile(t, "OTELCOL_IIOT_RPM")
	require.Contains(t, run(t, "rpm", "-K", "--nosignature", rpm), "digests OK")

	out := run(t, "rpm", "-qp", "--qf", `[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILEFLAGS:fflags}\n]`, rpm)
	type rpmFile struct{ perms, owner, flags string }
	got := map[string]rpmFile{}
	// Not TrimSpace: the last line's empty flags column ends in a tab.
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(l, "\t")
		require.Len(t, f, 5, "rpm -qp line %q", l)
		got[f[0]] = rpmFile{perms: f[1], owner: f[2] + ":" + f[3], flags: f[4]}
	}
	for _, e := range expectedEntries(t) {
		if e.debOnly {
			continue
		}
		g, ok := got[e.path]
		if !ok {
			t.Errorf("%s missing from the rpm", e.path)
			continue
		}
		require.Equal(t, e.mode.String(), g.perms, "mode of %s", e.path)
		require.Equal(t, e.owner+":"+e.group, g.owner, "owner of %s", e.path)
		if e.conffile {
			// %config(noreplace): an edited file stays, the new one is written as .rpmnew.
			require.Equal(t, "cn", g.flags, "%s must be %%config(noreplace)", e.path)
		} else {
			require.NotContains(t, g.flags, "c", "%s must not be a config file", e.path)
		}
	}
	// Everything under the package's own directories is owned, so rpm -e leaves nothing behind.
	for _, dir := range []string{confDir, confDir + "/devices", confDir + "/profiles", "/usr/share/otelcol-iiot", "/usr/share/doc/otelcol-iiot"} {
		require.Contains(t, got, dir, "directory %s must belong to the rpm", dir)
	}

	require.Contains(t, run(t, "rpm", "-qp", "--requires", rpm), "/usr/sbin/useradd")
	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for _, want := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet", "useradd --system", "[ -d /run/systemd/system ]"} {
		require.Contains(t, scripts, want)
	}
}

// TestMaintainerScripts checks the scripts of both distributions: shell syntax, the right package name,
// and no systemctl call without the check for a running systemd.
func TestMaintainerScripts(t *testing.T) {
	for _, dist := range []string{"otelcol-iiot", "otelcol-iiot-gateway"} {
		for _, s := range []string{"preinstall.sh", "postinstall.sh", "preremove.sh", "postremove.sh"} {
			p := filepath.Join(repoRoot, "distributions", dist, "packaging", s)
			run(t, "sh", "-n", p)
			body, err := os.ReadFile(p)
			require.NoError(t, err)
			require.Contains(t, string(body), fmt.Sprintf("NAME=%s\n", dist), p)
			if strings.Contains(string(body), "systemctl") {
				require.True(t, slices.ContainsFunc(strings.Split(string(body), "\n"), func(l string) bool {
					return strings.Contains(l, "[ -d /run/systemd/system ]")
				}), "%s calls systemctl without checking for a running systemd", p)
			}
		}
	}
}
