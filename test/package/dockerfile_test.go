// Copyright The otelcol-iiot Authors
// SPDX-License-Identifier: Apache-2.0

//go:build package

package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// No Docker engine runs where these tests run (and hadolint is not packaged for Debian 12), so the
// container recipes are checked as far as that allows: what they COPY exists (or is what `make dist`
// produces), the images are pinned, the user is not root, the exposed ports are the ones the
// environment makes the collector listen on, and the image's configuration validates with the
// image's environment, read from a directory laid out as the COPY instructions lay out the image.

type instruction struct {
	cmd  string
	args string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.Zero(t, cur.Len(), "%s ends in a continuation line", path)
	return out
}

// flags splits "--a=b --c=d rest..." into the flags and the remaining words.
func flags(args string) (map[string]string, []string) {
	fl := map[string]string{}
	var words []string
	for _, w := range strings.Fields(args) {
		if strings.HasPrefix(w, "--") && len(words) == 0 {
			k, v, _ := strings.Cut(strings.TrimPrefix(w, "--"), "=")
			fl[k] = v
			continue
		}
		words = append(words, w)
	}
	return fl, words
}

func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	require.True(t, strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"), "exec form expected: %s", s)
	var out []string
	for _, p := range strings.Split(strings.Trim(s, "[]"), ",") {
		out = append(out, strings.Trim(strings.TrimSpace(p), `"`))
	}
	return out
}

// parseEnv reads `ENV K=V K2=V2` (no spaces inside values, as in our recipes).
func parseEnv(t *testing.T, args string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range strings.Fields(args) {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, "ENV %q: only the K=V form is used", args)
		env[k] = v
	}
	return env
}

// buildx's TARGETARCH/TARGETVARIANT for the platforms `make dist` builds, and dist's file suffix.
var platforms = []struct{ arch, variant, distSuffix string }{
	{"amd64", "", "amd64"}, {"arm64", "", "arm64"}, {"arm", "v7", "armv7"},
}

func TestDockerfiles(t *testing.T) {
	for _, dist := range []string{"otelcol-iiot", "otelcol-iiot-gateway"} {
		t.Run(dist, func(t *testing.T) { checkDockerfile(t, dist) })
	}
}

func checkDockerfile(t *testing.T, dist string) {
	path := filepath.Join(repoRoot, "distributions", dist, "packaging", "Dockerfile")
	ins := parseDockerfile(t, path)
	ignored := dockerignore(t, path+".dockerignore")

	// Stages, and the instructions of the last (runtime) one.
	stages := map[string]bool{}
	var final []instruction
	var prepRuns []string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			_, words := flags(in.args)
			require.NotEmpty(t, words)
			image := words[0]
			_, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
			require.True(t, ok && tag != "" && tag != "latest", "FROM %s: pin a tag", image)
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				stages[words[2]] = true
			}
			final = nil
		case "RUN":
			prepRuns = append(prepRuns, in.args)
		}
		final = append(final, in)
	}

	env := map[string]string{}
	var copies []struct {
		srcs []string
		dst  string
	}
	var entrypoint, cmdArgs, exposed []string
	user := ""
	for _, in := range final {
		switch in.cmd {
		case "COPY":
			fl, words := flags(in.args)
			require.GreaterOrEqual(t, len(words), 2, "COPY %s", in.args)
			srcs, dst := words[:len(words)-1], words[len(words)-1]
			if from, ok := fl["from"]; ok {
				require.True(t, stages[from], "COPY --from=%s: no such stage", from)
				// The other stage must create what is copied from it.
				for _, s := range srcs {
					require.True(t, slices.ContainsFunc(prepRuns, func(r string) bool { return strings.Contains(r, s) }), "COPY --from=%s %s: no RUN creates it", from, s)
				}
				require.Equal(t, "65532:65532", fl["chown"], "COPY --from=%s %s must belong to the runtime user", from, dst)
				continue
			}
			for _, p := range platforms {
				for _, s := range srcs {
					s = strings.NewReplacer("${TARGETARCH}", p.arch, "${TARGETVARIANT}", p.variant).Replace(s)
					require.False(t, ignored(strings.TrimSuffix(s, "/")), "COPY %s: excluded from the build context by %s.dockerignore", s, filepath.Base(path))
					if strings.HasPrefix(s, "dist/") {
						// Built by `make dist` (not committed): the name must be the one it produces.
						require.Equal(t, "dist/"+dist+"_linux_"+p.distSuffix, s, "COPY %s", in.args)
						continue
					}
					_, err := os.Stat(filepath.Join(repoRoot, s))
					require.NoError(t, err, "COPY source %s (relative to the build context, the repository root)", s)
				}
			}
			copies = append(copies, struct {
				srcs []string
				dst  string
			}{srcs, dst})
		case "ENV":
			for k, v := range parseEnv(t, in.args) {
				env[k] = v
			}
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENTRYPOINT":
			entrypoint = jsonArray(t, in.args)
		case "CMD":
			cmdArgs = jsonArray(t, in.args)
		}
	}

	uid, gid, ok := strings.Cut(user, ":")
	require.True(t, ok, "USER %q: give uid:gid", user)
	for _, id := range []string{uid, gid} {
		n, err := strconv.Atoi(id)
		require.NoError(t, err, "USER %q must be numeric (the runtime image resolves no names)", user)
		require.NotZero(t, n, "USER %q must not be root", user)
	}

	// Every address the environment makes the collector listen on from outside is exposed, and only those.
	var listening []string
	for _, v := range env {
		if strings.HasPrefix(v, "0.0.0.0:") {
			listening = append(listening, strings.TrimPrefix(v, "0.0.0.0:"))
		}
	}
	require.ElementsMatch(t, listening, exposed, "EXPOSE must match the 0.0.0.0 listen addresses in ENV")

	// Lay the image's files out under a temporary root, as the COPY instructions do (amd64).
	root := t.TempDir()
	// The image's user reads it (t.TempDir's parent is private to this test's user).
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o755))
	require.NoError(t, os.Chmod(root, 0o755))
	binary := ""
	for _, c := range copies {
		for _, s := range c.srcs {
			s = strings.NewReplacer("${TARGETARCH}", "amd64", "${TARGETVARIANT}", "").Replace(s)
			if strings.HasPrefix(s, "dist/") {
				binary = filepath.Join(repoRoot, s)
				require.Equal(t, entrypoint[0], c.dst, "ENTRYPOINT must run the copied binary")
				continue
			}
			src := filepath.Join(repoRoot, s)
			dst := filepath.Join(root, c.dst)
			if strings.HasSuffix(c.dst, "/") {
				fi, err := os.Stat(src)
				require.NoError(t, err)
				if !fi.IsDir() {
					dst = filepath.Join(dst, filepath.Base(s))
				}
			}
			require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
			if strings.HasSuffix(s, "/") {
				src += "/." // COPY dir/ copies the directory's contents
			}
			out, err := exec.Command("cp", "-r", "--no-preserve=ownership", src, dst).CombinedOutput()
			require.NoError(t, err, "%s", out)
		}
	}
	require.NotEmpty(t, binary, "no COPY of the binary from dist/")

	// Absolute paths of the image, inside the temporary root.
	abs := regexp.MustCompile(`(^|=)(/(etc|var)/)`)
	rebase := func(s string) string { return abs.ReplaceAllString(s, "${1}"+root+"${2}") }
	var args []string
	for _, a := range cmdArgs {
		args = append(args, rebase(a))
	}
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			_, err := os.Stat(p)
			require.NoError(t, err, "CMD's config file is not in the image")
		}
	}

	t.Run("validate", func(t *testing.T) {
		if _, err := os.Stat(binary); err != nil {
			t.Skipf("%s not built (make dist builds it; make package-test builds only the amd64 edge binary)", binary)
		}
		cmd := exec.Command(binary, append([]string{"validate"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+rebase(v))
		}
		if os.Geteuid() == 0 {
			// As the image's user: the copied configuration must be readable by it.
			u, _ := strconv.Atoi(uid)
			g, _ := strconv.Atoi(gid)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}}
			if dir := filepath.Dir(binary); !worldTraversable(dir) {
				t.Skipf("%s is not readable by uid %d", binary, u)
			}
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s validate %s (image environment):\n%s", filepath.Base(binary), strings.Join(args, " "), out)
	})
}

// worldTraversable reports whether every directory up to dir can be entered by any user.
func worldTraversable(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for d := abs; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// dockerignore returns whether the ignore file excludes a path of the build context: the last pattern
// that matches the path or one of its parent directories decides ("!" re-includes).
func dockerignore(t *testing.T, path string) func(string) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "the Dockerfile's ignore file (the build context is the whole repository)")
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	return func(p string) bool {
		excluded := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			for q := p; q != "." && q != "/"; q = filepath.Dir(q) {
				if ok, _ := filepath.Match(pat, q); ok {
					excluded = !neg
					break
				}
			}
		}
		return excluded
	}
}
