// Package dtu accepts 4G DTUs (data transfer units) that dial in to the collector: devices behind a
// cellular modem have no public address, so the DTU opens a TCP connection to us, names itself with a
// registration packet and then forwards bytes between the socket and its serial port. One Listener
// serves many DTUs on one port; it identifies each by its registration packet, strips its heartbeats
// from the byte stream and hands protocol clients (DL/T 645, Modbus RTU …) a net.Conn for the DTU id
// they are bound to.
package dtu
