//go:build unix

package modbusreceiver

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used: client, server and receiver alike,
// so cpu-ns/reading compares the work of each side on a machine shared with other loads, where wall
// time also measures the others.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
