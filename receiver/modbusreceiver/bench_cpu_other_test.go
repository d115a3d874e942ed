//go:build !unix

package modbusreceiver

import "time"

// cpuTime is not measured here (cpu-ns/reading reads 0).
func cpuTime() time.Duration { return 0 }
