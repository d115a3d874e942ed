// Package modbus is our Modbus client: the PDUs of the reads the receiver uses (function codes 1 to 4),
// the RTU (CRC, t3.5 gap), ASCII (':' … LRC CR LF) and MBAP framings, and a client that performs one
// transaction at a time over any Link (a serial port, a TCP socket, a DTU's socket, a shared bus).
//
// It exists because the library we use for Modbus/TCP opens its own transport from a URL: it cannot
// run over a socket it is handed, a port shared with other protocols, or ASCII framing.
package modbus
