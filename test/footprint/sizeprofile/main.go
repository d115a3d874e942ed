// Command sizeprofile shows what the edge binary's bytes are made of (issue 17: the stripped binary
// against the ≈ 30 MB of a custom Telegraf build). It reads the ELF symbol table of an unstripped build
// and its module list (build information), attributes each symbol that takes space in the file (not
// .bss/.noptrbss: zeroed memory costs no bytes on disk) to the module whose path is the longest prefix of
// the symbol's package, and prints the file's sections, then the top contributors by module and by family
// (collector core, contrib, gRPC, OpenTelemetry SDK, …) as markdown. Run from the repository root:
//
//	go run ./test/footprint/sizeprofile -binary _build/size/otelcol-iiot [-stripped _build/size/otelcol-iiot.stripped] [-top 20] [-pkg ./cmd/otelcol-iiot]
//
// The last table says what pulls each package in, from the import graph (`go list -deps`): the collector's
// own infrastructure, one component alone (dropping it from the manifest drops that code) or several.
//
// Symbols do not add up to the file: type descriptors (.rodata), most of the function table (.gopclntab)
// and the ELF headers carry no sized symbol. They grow with the code, so the "≈ MB of stripped" column
// gives each row its own data plus the rest of the stripped file in proportion to its code (.text).
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

func main() {
	binary := flag.String("binary", "_build/size/otelcol-iiot", "unstripped binary to profile")
	stripped := flag.String("stripped", "", "stripped copy of the same build (for the MB-of-stripped column); empty: none")
	top := flag.Int("top", 20, "rows of the module table")
	pkg := flag.String("pkg", "./cmd/otelcol-iiot", "main package the binary was built from (for the by-component table; empty: none)")
	flag.Parse()
	if err := run(os.Stdout, *binary, *stripped, *pkg, *top); err != nil {
		fmt.Fprintln(os.Stderr, "sizeprofile:", err)
		os.Exit(1) //nolint:forbidigo // a command's exit status
	}
}

func run(w io.Writer, binary, stripped, pkg string, top int) error {
	mods, err := modules(binary)
	if err != nil {
		return err
	}
	f, err := elf.Open(binary)
	if err != nil {
		return err
	}
	defer f.Close()
	byModule, byPackage, total, err := attribute(f, mods)
	if err != nil {
		return err
	}
	var strippedSize int64
	if stripped != "" {
		fi, err := os.Stat(stripped)
		if err != nil {
			return err
		}
		strippedSize = fi.Size()
	}
	fi, err := os.Stat(binary)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Binary %s: %.2f MB unstripped", binary, mb(fi.Size()))
	if strippedSize > 0 {
		fmt.Fprintf(w, ", %.2f MB stripped", mb(strippedSize))
	}
	fmt.Fprintf(w, "; sized symbols: %.2f MB of code, %.2f MB of data.\n\n", mb(total.code), mb(total.data))
	sections(w, f)
	fmt.Fprintln(w)

	table(w, "module (or standard-library package tree)", byModule, total, strippedSize, top, true)
	families := map[string]size{}
	for m, n := range byModule {
		families[family(m)] = families[family(m)].add(n)
	}
	fmt.Fprintln(w)
	table(w, "family", families, total, strippedSize, len(families), false)
	if pkg == "" {
		return nil
	}
	pulled, err := pulledInBy(pkg)
	if err != nil {
		return err
	}
	byRoot := map[string]size{}
	infraModules := map[string]size{}
	for p, n := range byPackage {
		r, ok := pulled[p]
		if !ok {
			r = "(runtime, linker: not any import's)"
		}
		byRoot[r] = byRoot[r].add(n)
		if r == infrastructure {
			m := owner(p+".x", mods)
			infraModules[m] = infraModules[m].add(n)
		}
	}
	fmt.Fprintln(w)
	table(w, "what pulls the code in (packages reachable only from it)", byRoot, total, strippedSize, top, false)
	fmt.Fprintln(w)
	table(w, "module, within the infrastructure row", infraModules, total, strippedSize, top, true)
	return nil
}

const infrastructure = "infrastructure: collector core, confmap, own telemetry (otelconf), runtime"

// pulledInBy classifies every package of the main package's import graph: "infrastructure" if the
// collector itself (otelcol, confmap and its providers, the telemetry, the converters) imports it, else
// the one component (or the set of components) that alone pulls it in. Dropping that component from the
// manifest drops those packages.
func pulledInBy(pkg string) (map[string]string, error) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output() //nolint:gosec // the package named on the command line
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	graph := map[string][]string{}
	var main string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		graph[f[0]] = f[1:]
		main = f[0] // go list -deps prints the main package last
	}
	reach := func(root string) map[string]bool {
		seen := map[string]bool{root: true}
		stack := []string{root}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, m := range graph[n] {
				if !seen[m] {
					seen[m] = true
					stack = append(stack, m)
				}
			}
		}
		return seen
	}
	infra := map[string]bool{main: true}
	byComponent := map[string][]string{}
	for _, imp := range graph[main] {
		if isComponent(imp) {
			name := imp[strings.LastIndex(imp, "/")+1:]
			for p := range reach(imp) {
				byComponent[p] = append(byComponent[p], name)
			}
			continue
		}
		for p := range reach(imp) {
			infra[p] = true
		}
	}
	pulled := map[string]string{}
	for p := range graph {
		switch {
		case infra[p]:
			pulled[p] = infrastructure
		case len(byComponent[p]) == 1:
			pulled[p] = "only " + byComponent[p][0]
		default:
			c := byComponent[p]
			sort.Strings(c)
			if len(c) > 3 {
				pulled[p] = "shared by 4 or more components"
			} else {
				pulled[p] = "shared by " + strings.Join(c, ", ")
			}
		}
	}
	return pulled, nil
}

// isComponent: a factory the manifest lists (…receiver, …processor, …exporter, …extension, storage).
func isComponent(imp string) bool {
	last := imp[strings.LastIndex(imp, "/")+1:]
	for _, k := range []string{"receiver", "processor", "exporter", "extension", "connector"} {
		if strings.HasSuffix(last, k) && len(last) > len(k) {
			return true
		}
	}
	return last == "filestorage"
}

// modules lists the binary's module paths (main module and dependencies) from its build information.
func modules(binary string) ([]string, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("build information of %s: %w", binary, err)
	}
	mods := []string{bi.Main.Path}
	for _, d := range bi.Deps {
		mods = append(mods, d.Path)
	}
	// longest first, so the first prefix that matches is the most specific module.
	sort.Slice(mods, func(i, j int) bool { return len(mods[i]) > len(mods[j]) })
	return mods, nil
}

// size is what a module or package has in the file: code (.text) and sized data symbols (.rodata,
// .data, .noptrdata, …). Type descriptors and most of the function table carry no sized symbol; they grow
// with the code, so the stripped file is spread in proportion to code (see share).
type size struct{ code, data int64 }

func (a size) add(b size) size { return size{a.code + b.code, a.data + b.data} }

// attribute sums the sizes of the symbols stored in the file by module and by package.
func attribute(f *elf.File, mods []string) (map[string]size, map[string]size, size, error) {
	syms, err := f.Symbols()
	if err != nil {
		return nil, nil, size{}, fmt.Errorf("symbol table (build without -ldflags=-s): %w", err)
	}
	sizes := map[string]size{}
	packages := map[string]size{}
	var total size
	for _, s := range syms {
		if s.Size == 0 || int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Type == elf.SHT_NOBITS {
			continue // .bss, .noptrbss: zeroed memory, no bytes in the file
		}
		n := size{data: int64(s.Size)}
		if sec.Name == ".text" {
			n = size{code: int64(s.Size)}
		}
		o := owner(s.Name, mods)
		sizes[o] = sizes[o].add(n)
		p := packageOf(s.Name)
		packages[p] = packages[p].add(n)
		total = total.add(n)
	}
	return sizes, packages, total, nil
}

// sections prints the allocated sections stored in the file: what a stripped binary is made of.
func sections(w io.Writer, f *elf.File) {
	fmt.Fprintln(w, "| section | MB |")
	fmt.Fprintln(w, "|---|---:|")
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || s.Size < 100_000 {
			continue
		}
		fmt.Fprintf(w, "| %s | %.2f |\n", s.Name, mb(int64(s.Size)))
	}
}

// owner names the module of a symbol, "std: <tree>" for the standard library, or a bucket for the
// linker's own symbols.
func owner(sym string, mods []string) string {
	switch {
	case strings.HasPrefix(sym, "runtime.pclntab"), sym == "runtime.pcheader", sym == "runtime.findfunctab",
		strings.HasPrefix(sym, "runtime.functab"), strings.HasPrefix(sym, "runtime.filetab"):
		return "(function table)"
	case strings.HasPrefix(sym, "go:string."), strings.HasPrefix(sym, "go:func."), strings.HasPrefix(sym, "go:cuinfo"),
		strings.HasPrefix(sym, "runtime.types"), strings.HasPrefix(sym, "runtime.rodata"), strings.HasPrefix(sym, "go:buildinfo"):
		return "(strings, closures, type data of no one package)"
	}
	pkg := packageOf(sym)
	if pkg == "" {
		return "(other linker symbols)"
	}
	for _, m := range mods {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		if first == "vendor" || first == "internal" {
			return "std: internal, vendor"
		}
		return "std: " + first
	}
	return pkg
}

// packageOf extracts the package path of a symbol: `type:*github.com/a/b.T` → github.com/a/b,
// `go:itab.*github.com/a/b.T,io.Writer` → github.com/a/b, `github.com/a/b.(*T).M` → github.com/a/b.
func packageOf(sym string) string {
	for _, p := range []string{"type:", "go:itab.", "go:link.", "go:info.", "go:map.init.", "gclocals·", "go:"} {
		sym = strings.TrimPrefix(sym, p)
	}
	sym = strings.TrimLeft(sym, "*[]0123456789&")
	for _, p := range []string{"map[", "chan ", "func(", "struct {", "interface {", "noalg."} {
		if strings.HasPrefix(sym, p) {
			sym = strings.TrimLeft(strings.TrimPrefix(sym, p), "*[]0123456789")
		}
	}
	// the package path ends at the first '.' after its last '/'.
	slash := strings.LastIndex(cutAtDelims(sym), "/")
	dot := strings.Index(sym[slash+1:], ".")
	if dot <= 0 {
		return ""
	}
	return sym[:slash+1+dot]
}

// cutAtDelims keeps the part of a symbol before the first character that cannot be in a package path's
// leading segment (type arguments, function signatures).
func cutAtDelims(s string) string {
	if i := strings.IndexAny(s, "[(,; "); i >= 0 {
		return s[:i]
	}
	return s
}

// family groups modules into what the task must keep or could drop.
func family(m string) string {
	switch {
	case strings.HasPrefix(m, "("):
		return "linker: function table, strings, type data"
	case strings.HasPrefix(m, "std: "):
		return "Go standard library"
	case strings.HasPrefix(m, "github.com/otelcol-iiot/"):
		return "ours (receivers, processors, exporter, internal)"
	case strings.HasPrefix(m, "go.opentelemetry.io/collector"):
		return "collector core (service, pdata, confmap, components)"
	case strings.HasPrefix(m, "github.com/open-telemetry/opentelemetry-collector-contrib"):
		return "collector contrib (components, ottl, translators)"
	case strings.HasPrefix(m, "go.opentelemetry.io/otel"), strings.HasPrefix(m, "go.opentelemetry.io/contrib"),
		strings.HasPrefix(m, "go.opentelemetry.io/proto"):
		return "OpenTelemetry Go SDK, otelgrpc/otelhttp, OTLP protos"
	case strings.HasPrefix(m, "google.golang.org/grpc"), strings.HasPrefix(m, "google.golang.org/genproto"),
		strings.HasPrefix(m, "golang.org/x/net"):
		return "gRPC, HTTP/2 (x/net), genproto"
	case strings.HasPrefix(m, "google.golang.org/protobuf"), strings.HasPrefix(m, "github.com/gogo/protobuf"),
		strings.HasPrefix(m, "github.com/golang/protobuf"):
		return "protobuf runtimes"
	case strings.HasPrefix(m, "github.com/prometheus/"):
		return "Prometheus client, common, prometheus/prometheus"
	case strings.HasPrefix(m, "github.com/gopcua/"), strings.HasPrefix(m, "github.com/simonvetter/"):
		return "device protocols (gopcua, simonvetter/modbus)"
	case strings.HasPrefix(m, "github.com/shirou/gopsutil"), strings.HasPrefix(m, "github.com/tklauser/"),
		strings.HasPrefix(m, "github.com/ebitengine/"), strings.HasPrefix(m, "github.com/power-devops/"):
		return "gopsutil (host_metrics)"
	default:
		return "other third-party"
	}
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// share estimates a row's part of the stripped file: its own data, plus the rest of the file (code, type
// descriptors, function table, headers) in proportion to its code.
func share(n, total size, stripped int64) float64 {
	return float64(n.data) + float64(stripped-total.data)*float64(n.code)/float64(total.code)
}

func table(w io.Writer, what string, sizes map[string]size, total size, stripped int64, top int, withFamily bool) {
	type row struct {
		name string
		n    size
	}
	rows := make([]row, 0, len(sizes))
	for k, v := range sizes {
		rows = append(rows, row{k, v})
	}
	key := func(r row) float64 { return share(r.n, total, max(stripped, 1)) }
	sort.Slice(rows, func(i, j int) bool {
		return key(rows[i]) > key(rows[j]) || key(rows[i]) == key(rows[j]) && rows[i].name < rows[j].name
	})
	head := "| # | " + what + " | MB of code | MB of data | % of code |"
	sep := "|---:|---|---:|---:|---:|"
	if stripped > 0 {
		head += " ≈ MB of stripped | % of stripped |"
		sep += "---:|---:|"
	}
	if withFamily {
		head += " family |"
		sep += "---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	line := func(num, name string, n size, fam string) {
		l := fmt.Sprintf("| %s | %s | %.2f | %.2f | %.1f |", num, name, mb(n.code), mb(n.data), 100*float64(n.code)/float64(total.code))
		if stripped > 0 {
			e := share(n, total, stripped)
			l += fmt.Sprintf(" %.2f | %.1f |", e/1e6, 100*e/float64(stripped))
		}
		if withFamily {
			l += " " + fam + " |"
		}
		fmt.Fprintln(w, l)
	}
	var rest size
	for i, r := range rows {
		if i >= top {
			rest = rest.add(r.n)
			continue
		}
		line(strconv.Itoa(i+1), r.name, r.n, family(r.name))
	}
	if len(rows) > top {
		line("", fmt.Sprintf("%d others", len(rows)-top), rest, "")
	}
}
