package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The profiling overlay keeps the workload's pipelines and adds pprof to the edge default's
// extensions (a later --config replaces the list, so it must name them all).
func TestProfilerOverlay(t *testing.T) {
	p := &profiler{addr: "127.0.0.1:6060"}
	var got struct {
		Extensions map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"extensions"`
		Service struct {
			Extensions []string `yaml:"extensions"`
			Pipelines  map[string]struct {
				Receivers []string `yaml:"receivers"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(p.overlay(overlay([]string{"modbus"}))), &got))
	assert.Equal(t, "127.0.0.1:6060", got.Extensions["pprof"].Endpoint)
	assert.Equal(t, []string{"health_check", "file_storage", "pprof"}, got.Service.Extensions)
	assert.Equal(t, []string{"modbus", "host_metrics", "otlp"}, got.Service.Pipelines["metrics"].Receivers)
	assert.Equal(t, []string{"modbus", "otlp"}, got.Service.Pipelines["traces"].Receivers)
}
