//go:generate ../../.tools/mdatagen metadata.yaml

// Package opcuareceiver reads OPC UA servers, by polling or by subscriptions, and emits each value as a
// metric and each poll as a trace through the shared device model.
package opcuareceiver
