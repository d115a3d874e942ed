// Command otelcol-iiot-probe is the commissioning tool of otelcol-iiot: it scans Modbus links for unit
// ids, checks register profiles against devices, finds the register of a value seen on a display, reads
// DL/T 645 meter addresses and identifiers, and browses OPC UA servers, printing device YAML the edge
// configuration loads. See README.md.
package main

import (
	"os"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
