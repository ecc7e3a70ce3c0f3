package store

import (
	"context"
	"database/sql"
	"syscall"
	"testing"
	"time"
)

// cpuMeter measures the CPU time a benchmark spends, in this process and,
// on PostgreSQL, in the server processes serving the store's connections:
// on a shared machine wall time measures the neighbours as much as the
// code, CPU time does not.
type cpuMeter struct {
	s    *Store
	pids []int
}

func newCPUMeter(tb testing.TB, s *Store) *cpuMeter {
	m := &cpuMeter{s: s}
	if s.d.pg() {
		// Hold every connection of the pool at once (apply uses one of
		// them) and ask each for its server process.
		ctx := context.Background()
		var conns []*sql.Conn
		for range 8 {
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			c, err := s.w.Conn(cctx)
			cancel()
			if err != nil {
				break // the pool is exhausted: every connection is held
			}
			conns = append(conns, c)
			var pid int
			if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				tb.Fatal(err)
			}
			m.pids = append(m.pids, pid)
		}
		for _, c := range conns {
			c.Close()
		}
	}
	return m
}

// self returns this process's CPU time.
func (m *cpuMeter) self() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// server returns the CPU time of the server processes found (on the same
// machine), 0 on SQLite.
func (m *cpuMeter) server() time.Duration {
	var total time.Duration
	for _, pid := range m.pids {
		total += procCPU(pid)
	}
	return total
}
