//go:build unix

package identity_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) the process has used: a
// throughput per CPU second stays meaningful on a machine shared with
// other work, where wall-clock figures are not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
