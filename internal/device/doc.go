// Package device is the device model shared by the modbus, opcua and dlt645 receivers: the device
// resource, the five health metrics, readings with staleness, poll spans with sampling and exemplars,
// and the Runner that polls a device on its schedule behind its circuit breaker.
//
// A receiver describes each device with an Identity and a Target (its protocol work), and gets back
// for each poll one pmetric.Metrics (health + readings) and, when sampled, one ptrace.Traces. A Fleet
// holds a receiver's devices, their scheduler and its Start/Shutdown lifecycle.
//
// A poll has two phases (see package poll). The I/O phase holds the device's link: the breaker
// check, a probe while it is open, and Target.Poll's requests. The record phase runs once the
// scheduler has released the link: Finisher.Finish (if the target has one) records the readings, the
// outcome feeds the breaker, and the poll is built and emitted. A subscription source (Fleet.AddSource)
// has no link: its loop runs both phases in one Runner.Run.
package device
