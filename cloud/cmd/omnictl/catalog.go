package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
)

// catalogCmd groups the catalog commands; hub is the hub to import into.
func catalogCmd(hub *hubConn, stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "catalog", Short: "product catalog files"}
	c.AddCommand(catalogValidateCmd(stdout, stderr))
	c.AddCommand(catalogImportCmd(stdout, stderr, hub))
	c.AddCommand(catalogSampleCmd(stdout))
	return c
}

// catalogSampleCmd writes a generated catalog (catalog.Sample) of any size,
// for demos and for trying an import at scale.
func catalogSampleCmd(stdout io.Writer) *cobra.Command {
	var format, out string
	var products int
	var seed int64
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "write a generated apparel, footwear and home catalog (3 to 6 variants a product)",
		Long: `Writes a deterministic sample catalog: the same --seed and --products always
give the same file. About 4.5 variants and 310 bytes of JSON Lines per
variant, so --products 360000 is about 500 MB.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := catalog.ParseFormat(format)
			if err != nil {
				return usageError{err}
			}
			if products < 0 {
				return usageError{errors.New("--products must not be negative")}
			}
			if out == "" || out == "-" {
				return catalog.WriteSample(stdout, f, seed, products)
			}
			file, err := os.Create(out)
			if err != nil {
				return err
			}
			if err := catalog.WriteSample(file, f, seed, products); err != nil {
				file.Close()
				return err
			}
			return file.Close()
		},
	}
	cmd.Flags().StringVar(&format, "format", "jsonl", "csv or jsonl")
	cmd.Flags().StringVarP(&out, "output", "o", "-", "file to write (- for standard output)")
	cmd.Flags().IntVar(&products, "products", 1000, "number of products")
	cmd.Flags().Int64Var(&seed, "seed", 1, "generator seed")
	return cmd
}

// catalogValidateCmd checks a catalog file the way an import would, without
// sending it anywhere: every bad row is listed with its line and field.
func catalogValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	var format string
	var partial bool
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "check a catalog file (CSV or JSON Lines) and list every bad row by line and field",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, err := validateFile(args[0], format, partial, stdout, stderr)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "csv or jsonl (default: from the file name and content)")
	cmd.Flags().BoolVar(&partial, "partial", false, "treat bad rows as skippable (a partial import) instead of fatal")
	return cmd
}

// validateFile parses a catalog file as an import would, with a progress
// bar on stderr, lists every bad row on stdout as file:line: field: reason,
// and fails when an all-or-nothing import would be refused.
func validateFile(name, format string, partial bool, stdout, stderr io.Writer) (catalog.Report, catalog.Format, error) {
	var fmtv catalog.Format
	var err error
	if format != "" {
		if fmtv, err = catalog.ParseFormat(format); err != nil {
			return catalog.Report{}, 0, usageError{err}
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return catalog.Report{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return catalog.Report{}, 0, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if fmtv == 0 {
		head, _ := br.Peek(512)
		if fmtv, err = catalog.DetectFormat(name, head); err != nil {
			return catalog.Report{}, 0, err
		}
	}
	mode := catalog.AllOrNothing
	if partial {
		mode = catalog.Partial
	}
	bar := newProgress(stderr, st.Size())
	rep, perr := catalog.Parse(br, fmtv, catalog.Options{Mode: mode, Progress: bar.update}, nil)
	bar.done(rep.Rows, rep.Bytes)
	printRowErrors(stdout, name, rep.Errors, rep.ErrorsDropped)
	fmt.Fprintf(stdout, "%s (%s): %d rows, %d valid, %d invalid\n", name, rep.Format, rep.Rows, rep.Valid, rep.Invalid)
	switch {
	case perr != nil && !errors.Is(perr, catalog.ErrInvalidRows):
		return rep, fmtv, perr
	case rep.Invalid > 0 && !partial:
		return rep, fmtv, fmt.Errorf("%d invalid rows: an all-or-nothing import would be refused (use --partial to skip them)", rep.Invalid)
	}
	return rep, fmtv, nil
}

func printRowErrors(w io.Writer, name string, errs []catalog.RowError, dropped int) {
	for _, e := range errs {
		fmt.Fprintf(w, "%s:%d: %s: %s\n", name, e.Line, e.Field, e.Reason)
	}
	if dropped > 0 {
		fmt.Fprintf(w, "... and %d more errors\n", dropped)
	}
}

// catalogImportCmd validates a catalog file locally, then streams it to
// the hub, which imports it in one transaction.
func catalogImportCmd(stdout, stderr io.Writer, hub *hubConn) *cobra.Command {
	var format string
	var partial bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "validate a catalog file (CSV or JSON Lines) and import it into the hub",
		Long: `Checks the file locally first, listing every bad row as file:line: field: reason.
An all-or-nothing import (the default) with bad rows is refused before anything
is sent; with --partial the hub imports the good rows and skips the rest. The
file is then streamed to the hub (POST /v1/catalog/import), which stores it in
one transaction and tells the stores about the products that changed.

The hub runs one import at a time: while another runs, it answers before
the file is sent, and the import fails, or with --wait keeps trying as the
hub advises until the time is up.

Exit status: 0 imported, 1 refused or failed, 2 usage error.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			rep, fmtv, err := validateFile(name, format, partial, stdout, stderr)
			if err != nil {
				var ue usageError
				if errors.As(err, &ue) {
					return err
				}
				return fmt.Errorf("refused, nothing was sent to the hub: %w", err)
			}
			if rep.Valid == 0 {
				return errors.New("refused, nothing was sent to the hub: the file has no valid rows")
			}
			return uploadCatalog(cmd.Context(), hub, name, fmtv, partial, wait, stdout, stderr)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "csv or jsonl (default: from the file name and content)")
	cmd.Flags().BoolVar(&partial, "partial", false, "import the good rows and skip the bad ones (default: any bad row refuses the whole file)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "while another import runs on the hub, keep trying this long (default: fail at once)")
	return cmd
}

// uploadCatalog streams the file to the hub with a progress bar and prints
// the hub's answer. While another import runs on the hub it tries again,
// as often as the hub's Retry-After says, for up to wait.
func uploadCatalog(ctx context.Context, hub *hubConn, name string, format catalog.Format, partial bool, wait time.Duration,
	stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	deadline := time.Now().Add(wait)
	for {
		resp, raw, err := sendCatalog(ctx, hub, name, format, partial, stderr)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusConflict {
			return importAnswer(resp, raw, name, stdout)
		}
		retry := 30 * time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			retry = time.Duration(s) * time.Second
		}
		left := time.Until(deadline)
		if left <= 0 {
			hint := " (or pass --wait)"
			if wait > 0 {
				hint = ""
			}
			return fmt.Errorf("nothing was imported: another catalog import is running on the hub; try again in %s%s", retry, hint)
		}
		pause := min(retry, left)
		fmt.Fprintf(stderr, "another catalog import is running on the hub; trying again in %s\n", pause.Round(time.Second))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// sendCatalog posts the file once. It asks the hub to answer before the
// body is sent (Expect: 100-continue), so that a refusal (another import
// running, no rights) costs no upload.
func sendCatalog(ctx context.Context, hub *hubConn, name string, format catalog.Format, partial bool, stderr io.Writer) (*http.Response, []byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{"format": {format.String()}, "mode": {"all"}, "source": {filepath.Base(name)}}
	if partial {
		q.Set("mode", "partial")
	}
	bar := newProgress(stderr, st.Size())
	bar.unit = "sent"
	body := &countingReader{r: f, total: st.Size(), bar: bar}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hub.URL()+"/v1/catalog/import?"+q.Encode(), body)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("hub URL %q: %w", hub.URL(), err)}
	}
	hub.authorize(req)
	req.ContentLength = st.Size()
	req.Header.Set("Expect", "100-continue")
	if format == catalog.CSV {
		req.Header.Set("Content-Type", "text/csv")
	} else {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	// No overall timeout: a big catalog takes a while to send and to store.
	resp, err := http.DefaultClient.Do(req)
	bar.done(0, body.n)
	if err != nil {
		return nil, nil, fmt.Errorf("hub unreachable: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the hub's answer: %w", err)
	}
	return resp, raw, nil
}

// importAnswer prints the hub's answer to an import: the rows it refused
// by line, and what it stored.
func importAnswer(resp *http.Response, raw []byte, name string, stdout io.Writer) error {
	var ans api.ImportAnswer
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("nothing was imported: %w", hubError(resp, raw))
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("nothing was imported: %w (the hub's --catalog-max-bytes)", hubError(resp, raw))
	}
	if json.Unmarshal(raw, &ans) != nil && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hub: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	printRowErrors(stdout, name, ans.Errors, ans.ErrorsDropped)
	switch resp.StatusCode {
	case http.StatusOK:
		fmt.Fprintf(stdout, "imported %s: %d variants (%d new, %d updated, %d unchanged), %d products changed, %d rows rejected\n",
			name, ans.Variants, ans.Created, ans.Updated, ans.Unchanged, len(ans.ProductsChanged), ans.Rejected)
		return nil
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("the hub refused the import, nothing was stored: %s", ans.Error)
	}
	msg := ans.Error
	if msg == "" {
		msg = string(bytes.TrimSpace(raw))
	}
	return fmt.Errorf("hub: %s: %s", resp.Status, msg)
}

// countingReader feeds an upload's progress bar.
type countingReader struct {
	r     io.Reader
	n     int64
	total int64
	bar   *progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.bar.update(0, c.n)
	return n, err
}

// progress draws a one-line progress bar on a terminal-like writer.
type progress struct {
	w     io.Writer
	total int64
	last  time.Time
	// unit, when set, labels bytes ("sent") instead of counting rows.
	unit string
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
	what := fmt.Sprintf("%d rows", rows)
	if p.unit != "" {
		what = fmt.Sprintf("%.1f of %.1f MB %s", float64(bytes)/1e6, float64(p.total)/1e6, p.unit)
	}
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, what)
}

// done draws the final state if a bar was shown, and ends its line.
func (p *progress) done(rows int, bytes int64) {
	if !p.last.IsZero() {
		p.draw(rows, bytes)
		fmt.Fprintln(p.w)
	}
}
