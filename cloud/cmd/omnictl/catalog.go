package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
)

// catalogCmd groups the catalog commands.
func catalogCmd() *cobra.Command {
	c := &cobra.Command{Use: "catalog", Short: "product catalog files"}
	c.AddCommand(catalogValidateCmd(os.Stdout, os.Stderr))
	return c
}

// catalogValidateCmd checks a catalog file the way an import would, without
// sending it anywhere: every bad row is listed with its line and field.
func catalogValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	var format string
	var partial bool
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "check a catalog file (CSV or JSON Lines) and list every bad row by line and field",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			br := bufio.NewReaderSize(f, 1<<16)
			var fmtv catalog.Format
			if format != "" {
				fmtv, err = catalog.ParseFormat(format)
			} else {
				head, _ := br.Peek(512)
				fmtv, err = catalog.DetectFormat(args[0], head)
			}
			if err != nil {
				return err
			}
			mode := catalog.AllOrNothing
			if partial {
				mode = catalog.Partial
			}
			bar := newProgress(stderr, st.Size())
			rep, perr := catalog.Parse(br, fmtv, catalog.Options{Mode: mode, Progress: bar.update}, nil)
			bar.done(rep.Rows, rep.Bytes)
			for _, e := range rep.Errors {
				fmt.Fprintf(stdout, "%s:%d: %s: %s\n", args[0], e.Line, e.Field, e.Reason)
			}
			if rep.ErrorsDropped > 0 {
				fmt.Fprintf(stdout, "... and %d more errors\n", rep.ErrorsDropped)
			}
			fmt.Fprintf(stdout, "%s (%s): %d rows, %d valid, %d invalid\n", args[0], rep.Format, rep.Rows, rep.Valid, rep.Invalid)
			switch {
			case perr != nil && !errors.Is(perr, catalog.ErrInvalidRows):
				return perr
			case rep.Invalid > 0 && !partial:
				return fmt.Errorf("%d invalid rows: an all-or-nothing import would be refused (use --partial to skip them)", rep.Invalid)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "csv or jsonl (default: from the file name and content)")
	cmd.Flags().BoolVar(&partial, "partial", false, "treat bad rows as skippable (a partial import) instead of fatal")
	return cmd
}

// progress draws a one-line progress bar on a terminal-like writer.
type progress struct {
	w     io.Writer
	total int64
	last  time.Time
}

func newProgress(w io.Writer, total int64) *progress { return &progress{w: w, total: total} }

func (p *progress) update(rows int, bytes int64) {
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(rows, bytes)
}

func (p *progress) draw(rows int, bytes int64) {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(bytes)/float64(p.total))
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %d rows", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, rows)
}

// done draws the final state if a bar was shown, and ends its line.
func (p *progress) done(rows int, bytes int64) {
	if !p.last.IsZero() {
		p.draw(rows, bytes)
		fmt.Fprintln(p.w)
	}
}
