package config

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Logger builds the programs' structured logger at the named level (debug,
// info, warn, error), writing text lines to w.
func Logger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "", "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("%w: log-level %q: use debug, info, warn or error", ErrConfig, level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
