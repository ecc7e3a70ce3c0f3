package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Program is what a binary's main hands to Main: its command (flags
// declared), a fresh defaults-filled config, how to read the log level from
// it, and what to run once it is loaded.
type Program[C any] struct {
	Cmd      *cobra.Command
	Defaults func() C
	LogLevel func(*C) string
	Run      func(ctx context.Context, cfg C, log *slog.Logger) error
}

// Main loads the configuration (flags, OMNI_ environment, --config file),
// builds the logger, runs the program until SIGINT or SIGTERM, and exits 1
// with "name: error" on failure. Both omni-hub and omni-edge start this way.
func Main[C any](p Program[C]) {
	fs := p.Cmd.Flags()
	p.Cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg := p.Defaults()
		if err := Load(fs, &cfg); err != nil {
			return err
		}
		log, err := Logger(os.Stderr, p.LogLevel(&cfg))
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return p.Run(ctx, cfg, log)
	}
	if err := p.Cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, p.Cmd.Name()+":", err)
		os.Exit(1)
	}
}
