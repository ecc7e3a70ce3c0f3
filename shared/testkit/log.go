package testkit

import (
	"log/slog"
	"sync/atomic"
	"testing"
)

// Logger sends warnings and errors to the test log until the test ends (a
// late line from a stopping goroutine must not panic the test binary).
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	w.on.Store(true)
	t.Cleanup(func() { w.on.Store(false) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct {
	t  testing.TB
	on atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if w.on.Load() {
		w.t.Log(string(p))
	}
	return len(p), nil
}
