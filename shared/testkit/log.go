package testkit

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// Logger sends warnings and errors to the test log until the test ends (a
// late line from a stopping goroutine must not panic the test binary).
func Logger(t testing.TB) *slog.Logger { return LoggerAt(t, slog.LevelWarn) }

// LoggerAt is Logger for records at level and above.
func LoggerAt(t testing.TB, level slog.Level) *slog.Logger {
	w := &tWriter{t: t}
	w.on.Store(true)
	t.Cleanup(func() { w.on.Store(false) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tWriter struct {
	t  testing.TB
	on atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if w.on.Load() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
