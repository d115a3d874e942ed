package main

import (
	"fmt"
	"strings"
)

// workload is one collector run: the device servers it needs, the device files it writes into
// $OTELCOL_IIOT_CONFIG_DIR and the receivers its pipelines keep.
type workload struct {
	name    string
	title   string
	devices int // devices polled once per interval
	// servers the workload needs: "modbus" (pymodbus) with these arguments, or "opcua" (opcuasim)
	modbusArgs []string
	opcua      bool
	receivers  []string // device receivers kept in the pipelines (none: idle)
	// device files, given the Modbus ports, the OPC UA port and the poll interval
	modbusYAML func(ports []int, interval string) string
	opcuaYAML  func(port int, interval string) string
	registry   string
}

var workloads = []workload{
	{
		name:       "modbus-2units",
		title:      "(a) Modbus, 23 fields on 2 units",
		devices:    2,
		modbusArgs: []string{"--servers", "1", "--units", "2", "--registers", "256"},
		receivers:  []string{"modbus"},
		modbusYAML: twoUnits,
		registry:   "meter-1: {tenant.id: site-operator, device_group: meters}\nmeter-2: {tenant.id: site-operator, device_group: meters}\n",
	},
	{
		name:       "modbus-50dev",
		title:      "(b) Modbus, 50 devices × 50 registers",
		devices:    50,
		modbusArgs: []string{"--servers", "50", "--units", "1", "--registers", "50"},
		receivers:  []string{"modbus"},
		modbusYAML: fiftyDevices,
		registry:   fiftyRegistry(),
	},
	{
		name:      "opcua-8",
		title:     "(c) OPC UA, 8 nodes",
		devices:   1,
		opcua:     true,
		receivers: []string{"opcua"},
		opcuaYAML: eightNodes,
		registry:  "plc-1: {tenant.id: site-operator, device_group: plc}\n",
	},
	{
		name:     "idle",
		title:    "(d) idle (no devices)",
		registry: "nothing-here: {tenant.id: site-operator}\n",
	},
}

// twoUnits is a gateway with two meters on one connection (polled one after the other): 12 + 11 fields
// of mixed types and tables, which the planner serves with 2 + 3 reads.
func twoUnits(ports []int, interval string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "poll: {interval: %s, timeout: 1s, retries: 1}\nconnections:\n  - endpoint: tcp://127.0.0.1:%d\n    devices:\n", interval, ports[0])
	b.WriteString("      - id: meter-1\n        unit_id: 1\n        resource_attributes: {device_group: meters}\n        fields:\n")
	// holding 0-15: 8 float32 (one read); input 100-103: 4 uint16 (one read)
	for i, f := range []struct{ metric, unit, phase string }{
		{"electrical.voltage", "V", "A"}, {"electrical.voltage", "V", "B"}, {"electrical.voltage", "V", "C"},
		{"electrical.current", "A", "A"}, {"electrical.current", "A", "B"}, {"electrical.current", "A", "C"},
		{"electrical.power.active", "W", "total"}, {"electrical.frequency", "Hz", ""},
	} {
		attrs := ""
		if f.phase != "" {
			attrs = fmt.Sprintf(", attributes: {phase: %s}", f.phase)
		}
		fmt.Fprintf(&b, "          - {name: f%d, metric: %s, unit: %s, type: float32, address: %d%s}\n", i, f.metric, f.unit, 2*i, attrs)
	}
	for i := range 4 {
		fmt.Fprintf(&b, "          - {name: status%d, metric: meter.status.word%d, table: input, type: uint16, address: %d}\n", i, i, 100+i)
	}
	b.WriteString("      - id: meter-2\n        unit_id: 2\n        resource_attributes: {device_group: meters}\n        fields:\n")
	// holding 0-11: 6 float32; holding 200-202: 3 int16 (too far to merge); input 50-53: 2 uint32
	for i, f := range []struct{ metric, unit, phase string }{
		{"electrical.voltage", "V", "A"}, {"electrical.voltage", "V", "B"}, {"electrical.voltage", "V", "C"},
		{"electrical.power.active", "W", "A"}, {"electrical.power.active", "W", "B"}, {"electrical.power.active", "W", "C"},
	} {
		fmt.Fprintf(&b, "          - {name: f%d, metric: %s, unit: %s, type: float32, address: %d, attributes: {phase: %s}}\n", i, f.metric, f.unit, 2*i, f.phase)
	}
	for i := range 3 {
		fmt.Fprintf(&b, "          - {name: temp%d, metric: meter.temperature, unit: Cel, type: int16, scale: 0.1, address: %d, attributes: {sensor: t%d}}\n", i, 200+i, i)
	}
	b.WriteString("          - {name: import, metric: electrical.energy.active, unit: Wh, kind: sum, table: input, type: uint32, address: 50, attributes: {direction: import, phase: total}}\n")
	b.WriteString("          - {name: export, metric: electrical.energy.active, unit: Wh, kind: sum, table: input, type: uint32, address: 52, attributes: {direction: export, phase: total}}\n")
	return b.String()
}

// fiftyDevices is 50 Modbus/TCP devices, each on its own port and connection (polled in parallel),
// each with 50 holding registers read as 50 uint16 fields in one request.
func fiftyDevices(ports []int, interval string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "poll: {interval: %s, timeout: 1s, retries: 1}\n", interval)
	b.WriteString("profiles:\n  bench_50:\n    manufacturer: Bench\n    model: R50\n    fields:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "      - {name: r%02d, metric: bench.register%02d, type: uint16, address: %d}\n", i, i, i)
	}
	b.WriteString("connections:\n")
	for i, p := range ports {
		fmt.Fprintf(&b, "  - endpoint: tcp://127.0.0.1:%d\n    devices:\n      - {id: dev-%02d, unit_id: 1, profile: bench_50}\n", p, i)
	}
	return b.String()
}

func fiftyRegistry() string {
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "dev-%02d: {tenant.id: site-operator, device_group: bench}\n", i)
	}
	return b.String()
}

// eightNodes reads eight numeric nodes of cmd/opcuasim (started with -bulk 2) in mode poll.
func eightNodes(port int, interval string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "endpoint: opc.tcp://127.0.0.1:%d\ndevice_id: plc-1\nresource_attributes: {device_group: plc}\n", port)
	fmt.Fprintf(&b, "poll: {interval: %s, timeout: 1s}\nmode: poll\nnodes:\n", interval)
	for _, n := range []struct{ id, name string }{
		{"Temperature", "line.temperature"}, {"Pressure", "line.pressure"},
		{"Running", "line.running"}, {"Line2.Temperature", "line2.temperature"}, {"Line2.Pressure", "line2.pressure"},
		{"Bulk.00000", "bulk.value0"}, {"Bulk.00001", "bulk.value1"},
	} {
		fmt.Fprintf(&b, "  - {id: \"nsu=urn:otelcol-iiot:opcuasim;s=%s\", name: %s}\n", n.id, n.name)
	}
	// The simulator's Counter is an energy meter in kWh: read as the electrical vocabulary's Wh, with
	// the meter group of devices/opcua.yaml.
	b.WriteString("groups:\n  - name: meter\n    metric_prefix: electrical.\n    scale: 1000\n    attributes: {phase: total}\n    nodes:\n" +
		"      - {id: \"nsu=urn:otelcol-iiot:opcuasim;s=Counter\", name: energy.active, unit: Wh, kind: sum, attributes: {direction: import}}\n")
	return b.String()
}

// Receivers reject a device file with no devices, and the collector validates every configured
// receiver, used or not: a receiver a workload does not use gets a valid file here (never started,
// since the overlay leaves it out of the pipelines).
const (
	unusedModbus = "connections: [{endpoint: \"tcp://127.0.0.1:1\", devices: [{id: unused, fields: [{name: f, address: 0}]}]}]\n"
	unusedDLT645 = "buses: [{endpoint: \"tcp://127.0.0.1:1\", meters: [{id: unused, address: \"000000000001\", profile: three_phase}]}]\n"
	unusedOPCUA  = "endpoint: opc.tcp://127.0.0.1:1\ndevice_id: unused\nnodes: [{id: \"ns=1;s=unused\", name: unused}]\n"
)

// overlay keeps only the workload's device receivers (and the edge default's host_metrics and otlp) in
// the pipelines; lists given in a later --config replace the earlier ones.
func overlay(receivers []string) string {
	m := append(append([]string{}, receivers...), "host_metrics", "otlp")
	t := append(append([]string{}, receivers...), "otlp")
	return fmt.Sprintf("service:\n  pipelines:\n    metrics:\n      receivers: [%s]\n    traces:\n      receivers: [%s]\n",
		strings.Join(m, ", "), strings.Join(t, ", "))
}
