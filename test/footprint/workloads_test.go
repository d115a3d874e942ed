package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver"
)

// The workloads' device files are valid receiver configs, and their electrical readings are in the
// vocabulary (the OPC UA Counter is electrical.energy.active in Wh, not a name of its own).
func TestWorkloadDeviceFiles(t *testing.T) {
	electrical := 0
	check := func(name, yml string) (metrics []string) {
		var doc any
		require.NoError(t, yaml.Unmarshal([]byte(yml), &doc), name)
		for _, r := range devicetest.ConfigReadings(name, doc) {
			metrics = append(metrics, r.Metric)
			devicetest.CheckReading(t, r)
			if strings.HasPrefix(r.Metric, device.VocabularyPrefix) {
				electrical++
			}
		}
		return metrics
	}
	for _, w := range workloads {
		if w.modbusYAML != nil {
			ports := make([]int, 50)
			for i := range ports {
				ports[i] = 1502 + i
			}
			yml := w.modbusYAML(ports, "10s")
			devicetest.LoadConfig(t, modbusreceiver.NewFactory(), yml)
			check(w.name+"/modbus", yml)
		}
		if w.opcuaYAML != nil {
			yml := w.opcuaYAML(4840, "10s")
			devicetest.LoadConfig(t, opcuareceiver.NewFactory(), yml)
			metrics := check(w.name+"/opcua", yml)
			assert.Contains(t, metrics, "electrical.energy.active", "the simulator's Counter, in the vocabulary")
			assert.NotContains(t, metrics, "opcua.line.energy")
		}
	}
	assert.Greater(t, electrical, 15)
}
