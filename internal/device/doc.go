// Package device is the device model shared by the modbus, opcua and dlt645 receivers: the device
// resource, the five health metrics, readings with staleness, poll spans with sampling and exemplars,
// and the Runner that polls a device on its schedule behind its circuit breaker.
//
// A receiver describes each device with an Identity and a Target (its protocol work), and gets back
// for each poll one pmetric.Metrics (health + readings) and, when sampled, one ptrace.Traces. A Fleet
// holds a receiver's devices, their scheduler and its Start/Shutdown lifecycle.
package device
