package device

// Resync tells whether the connection a request failed on must be brought back in step before it
// carries another request, so that the next request never reads bytes meant for an earlier one.
//
// It is true after any doubt about where the next reply starts: no answer in time (the answer, or the
// rest of it, may still come), a short, malformed or unexpected frame (wrong transaction, protocol or
// unit id: the stream is out of step), a failed checksum (the length may have been corrupted too), and a
// broken or abandoned exchange (a request is out whose answer nobody will read). It is false when the
// request succeeded or the device sent a well-formed answer (a protocol exception, a value that does not
// decode): the stream is in step and the connection is kept.
//
// Bringing it back in step is the transport's business: a TCP stream is closed and opened again (the
// late bytes die with the old socket); a serial line, or a TCP connection to a serial gateway, is
// drained: wait until the line is silent (a reply still on the wire is over) and discard what arrived.
// Devices sharing the connection lose at most the poll in flight.
func Resync(err error) bool {
	if err == nil {
		return false
	}
	switch Classify(err) {
	case ErrTimeout, ErrConnection, ErrProtocol, ErrChecksum:
		return true
	}
	return false
}
