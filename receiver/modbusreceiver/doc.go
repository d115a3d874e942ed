// Package modbusreceiver polls Modbus devices (tcp://, rtuovertcp://, rtu://, tcp+tls://) and turns their
// registers into metrics, and each poll into a trace, through the shared device model of internal/device.
//
//go:generate ../../.tools/mdatagen metadata.yaml
package modbusreceiver
