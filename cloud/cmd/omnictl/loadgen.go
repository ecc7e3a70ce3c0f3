package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
)

// loadgenCmd drives real agents with realistic POS traffic and records what
// they accepted; its verify subcommand checks a hub against that record.
func loadgenCmd(stdout io.Writer, hub *hubConn) *cobra.Command {
	var (
		agents              []string
		catalogFile, record string
		rate, zipf          float64
		duration, diurnal   time.Duration
		settle, every       time.Duration
		events              int64
		workers             int
		seed                uint64
		offline             []string
		mix, runID          string
	)
	cmd := &cobra.Command{
		Use:   "loadgen --agents [STORE=]URL,... [flags]",
		Short: "drive agents' POS APIs with realistic traffic and record every accepted event",
		Long: `Sends sales, returns, receipts, adjustments, counts, reservations, reviews and
scans to the agents' POST /v1/events, SKUs drawn from a catalog with Zipf
popularity, paced to --rate events/s in total (optionally following a day
compressed into --diurnal), each request with its own Idempotency-Key and
retried with it until the agent answers. Every accepted event is written to
--record as its whole envelope (JSON Lines), for 'omnictl loadgen verify'.

An agent is given by its URL (store and device are read from its
/v1/status) or as STORE=URL. Prints a line every --every and a table at the
end; Ctrl-C stops the traffic and lets requests already sent settle.

Exit status: 0 every request answered, 1 a request rejected (4xx other than
507: a bug) or left unanswered, 2 usage error.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets, err := parseAgents(agents)
			if err != nil {
				return usageError{err}
			}
			o := loadgen.Options{
				Targets: targets, Zipf: zipf, Seed: seed, RunID: runID, Rate: rate, Workers: workers,
				Duration: duration, Events: events, Diurnal: diurnal, Settle: settle,
			}
			if o.Mix, err = parseMix(mix); err != nil {
				return usageError{err}
			}
			for _, s := range offline {
				w, err := parseWindow(s)
				if err != nil {
					return usageError{err}
				}
				o.Offline = append(o.Offline, w)
			}
			if catalogFile != "" {
				vs, err := loadgen.ReadCatalog(catalogFile)
				if err != nil {
					return err
				}
				o.UseCatalog(vs)
			} else {
				o.UseCatalog(catalog.Sample(1, 200))
			}
			var rec *os.File
			if record != "" {
				if rec, err = os.Create(record); err != nil {
					return err
				}
				defer rec.Close()
				o.Record = rec
			}
			g, err := loadgen.New(o)
			if err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := runLoad(ctx, g, stdout, every)
			if err != nil {
				return err
			}
			if rec != nil {
				if err := rec.Close(); err != nil {
					return err
				}
			}
			printLoadReport(stdout, rep, record)
			switch {
			case len(rep.Rejected) > 0:
				return fmt.Errorf("%d requests rejected: a bug in the agent or the generator", len(rep.Rejected))
			case len(rep.Unresolved) > 0:
				return fmt.Errorf("%d requests never answered: their events may or may not be in the books", len(rep.Unresolved))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&agents, "agents", nil, "agents to drive: URL or STORE=URL, comma-separated or repeated (required)")
	f.StringVar(&catalogFile, "catalog", "", "catalog file (CSV or JSON Lines) whose SKUs to sell (default: a built-in sample of 200 products)")
	f.Float64Var(&rate, "rate", 0, "total events per second (the peak with --diurnal); 0: as fast as the agents answer")
	f.DurationVar(&duration, "duration", time.Minute, "how long to send; 0 with --events 0: until interrupted")
	f.Int64Var(&events, "events", 0, "stop after this many events (0: no limit)")
	f.IntVar(&workers, "workers", loadgen.DefaultWorkers, "concurrent tills per agent")
	f.Uint64Var(&seed, "seed", 1, "random seed of the traffic")
	f.Float64Var(&zipf, "zipf", loadgen.DefaultZipf, "Zipf exponent (> 1) of SKU popularity")
	f.DurationVar(&diurnal, "diurnal", 0, "follow a day-shaped curve compressed into this period (e.g. 10m)")
	f.StringArrayVar(&offline, "offline", nil, "close an agent's POS for a while: INDEX:START-END, e.g. 0:30s-1m (repeatable)")
	f.StringVar(&mix, "mix", "", "traffic weights, e.g. sale=70,return=5,receipt=8,adjust=2,count=3,reservation=5,review=3,scan=4")
	f.StringVar(&record, "record", "", "write every accepted event's envelope to this file (JSON Lines)")
	f.DurationVar(&settle, "settle", loadgen.DefaultSettle, "how long requests already sent keep being retried after the end")
	f.DurationVar(&every, "every", 3*time.Second, "how often to print a progress line")
	f.StringVar(&runID, "run-id", "", "id put in idempotency keys and reservation ids (default: from the start time)")
	cmd.AddCommand(loadgenVerifyCmd(stdout, hub))
	return cmd
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// runLoad runs g, printing a progress line every so often.
func runLoad(ctx context.Context, g *loadgen.Generator, w io.Writer, every time.Duration) (*loadgen.Report, error) {
	type result struct {
		rep *loadgen.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := g.Run(ctx)
		done <- result{rep, err}
	}()
	if every <= 0 {
		every = 3 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last int64
	lastAt := time.Now()
	for {
		select {
		case r := <-done:
			return r.rep, r.err
		case now := <-tick.C:
			_, tot := g.Stats()
			target := "unpaced"
			if r := g.Rate(); r > 0 {
				target = fmt.Sprintf("pacing %.0f/s", r)
			}
			fmt.Fprintf(w, "%6s  %7.0f events/s (%s)  accepted %d  retried %d  replayed %d  refused %d  errors %d  p50 %s  p99 %s\n",
				g.Elapsed().Round(time.Second), float64(tot.Accepted-last)/now.Sub(lastAt).Seconds(), target,
				tot.Accepted, tot.Retried, tot.Replayed, tot.Refused, tot.Errors, fmtLatency(tot.P50), fmtLatency(tot.P99))
			last, lastAt = tot.Accepted, now
		}
	}
}

func printLoadReport(w io.Writer, rep *loadgen.Report, record string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STORE\tDEVICE\tSENT\tACCEPTED\tRETRIED\tREPLAYED\tREFUSED\tERRORS\tUNRESOLVED\tP50\tP99\tMAX\t")
	row := func(store, device string, s loadgen.TargetStats) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", store, device, s.Events, s.Accepted, s.Retried,
			s.Replayed, s.Refused, s.Errors, s.Unresolved, fmtLatency(s.P50), fmtLatency(s.P99), fmtLatency(s.Max))
	}
	for _, s := range rep.Targets {
		row(s.Target.Store, s.Target.Device, s)
	}
	row("TOTAL", "", rep.Total)
	tw.Flush()
	fmt.Fprintf(w, "%d events accepted in %s: %.0f events/s (run %s)\n", rep.Total.Accepted, rep.Elapsed.Round(time.Millisecond), rep.EventsPerSecond(), rep.RunID)
	if record != "" {
		fmt.Fprintf(w, "recorded to %s; check the hub with: omnictl loadgen verify --record %s\n", record, record)
	}
	for i, r := range rep.Rejected {
		if i == 5 {
			fmt.Fprintf(w, "... and %d more rejections\n", len(rep.Rejected)-5)
			break
		}
		fmt.Fprintf(w, "rejected: %s answered %d to %s: %s\n", rep.Targets[r.Target].Target, r.Status, r.Body, r.Answer)
	}
	if n := rep.Total.Unstamped; n > 0 {
		fmt.Fprintf(w, "warning: %d accepted events came without an HLC (an agent too old to say): the oracle cannot place them\n", n)
	}
}

func fmtLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(10 * time.Millisecond).String()
}

// loadgenVerifyCmd compares a hub with the books a record implies.
func loadgenVerifyCmd(stdout io.Writer, hub *hubConn) *cobra.Command {
	var record string
	var timeout, every time.Duration
	cmd := &cobra.Command{
		Use:   "verify --record FILE [--hub URL]",
		Short: "wait for the hub to drain, then compare its books with the ones the recorded events imply",
		Long: `Reads the envelopes 'omnictl loadgen --record' wrote, computes the books the
hub must show with the reconciliation rules' reference implementation, and
compares them with the hub's (GET /v1/inventory, at the locations the events
touched), and the hub's applied-event count of each device (GET /v1/stores)
with the events its agent accepted. It waits up to --timeout for the hub to
catch up.

Counts are exact when the record holds every event those devices ever sent
(fresh agents, no other POS).

Exit status: 0 the books match and every event was applied once, 1 any
difference, lost or double-applied event, 2 usage error.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if record == "" {
				return usageError{errors.New("--record: name the file 'omnictl loadgen --record' wrote")}
			}
			f, err := os.Open(record)
			if err != nil {
				return err
			}
			envs, err := loadgen.ReadRecord(f)
			f.Close()
			if err != nil {
				return err
			}
			if len(envs) == 0 {
				return fmt.Errorf("%s holds no events", record)
			}
			c, err := loadgen.NewChecker(envs)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(stdout, "%d events from %s; waiting up to %s for %s to drain\n", len(envs), record, timeout, hub.URL())
			v, err := waitVerdict(ctx, c, loadgen.Hub{URL: hub.URL(), Token: hub.Token()}, timeout, every, stdout)
			if err != nil {
				return err
			}
			printVerdict(stdout, v)
			if !v.OK() {
				return fmt.Errorf("the hub does not match the oracle: %d positions differ, %d events lost, %d double-applied",
					len(v.Differences), v.Lost, v.DoubleApplied)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&record, "record", "", "the file 'omnictl loadgen --record' wrote (required)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the hub to drain")
	cmd.Flags().DurationVar(&every, "every", 3*time.Second, "how often to print a progress line while waiting")
	return cmd
}

// waitVerdict checks until the verdict is OK or timeout passes, printing
// progress; it fails only if the hub never answered.
func waitVerdict(ctx context.Context, c *loadgen.Checker, hub loadgen.Hub, timeout, every time.Duration, w io.Writer) (loadgen.Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start, lastPrint := time.Now(), time.Now()
	v, err := c.WaitProgress(ctx, hub, 250*time.Millisecond, func(last loadgen.Verdict, lastErr error) {
		if every <= 0 || time.Since(lastPrint) < every {
			return
		}
		lastPrint = time.Now()
		if lastErr != nil {
			fmt.Fprintf(w, "%6s  %v\n", time.Since(start).Round(time.Second), lastErr)
		} else {
			fmt.Fprintf(w, "%6s  %d of %d events applied, %d positions differ\n", time.Since(start).Round(time.Second), last.Applied, last.Accepted, len(last.Differences))
		}
	})
	if err != nil {
		return v, fmt.Errorf("hub unreachable: %w", err)
	}
	return v, nil
}

func printVerdict(w io.Writer, v loadgen.Verdict) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "positions checked\t%d\n", v.Positions)
	fmt.Fprintf(tw, "differences\t%d\n", len(v.Differences))
	fmt.Fprintf(tw, "events accepted\t%d\n", v.Accepted)
	fmt.Fprintf(tw, "events applied\t%d\n", v.Applied)
	fmt.Fprintf(tw, "lost\t%d\n", v.Lost)
	fmt.Fprintf(tw, "double-applied\t%d\n", v.DoubleApplied)
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STORE\tDEVICE\tACCEPTED\tAPPLIED\tLOST\tDOUBLE\t")
	for _, d := range v.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t\n", d.Store, d.Device, d.Accepted, d.Applied, d.Lost, d.DoubleApplied)
	}
	tw.Flush()
	for i, d := range v.Differences {
		if i == 20 {
			fmt.Fprintf(w, "... and %d more differences\n", len(v.Differences)-20)
			break
		}
		fmt.Fprintln(w, "difference:", d)
	}
}

// parseAgents reads --agents items: URL, STORE=URL or STORE/DEVICE=URL.
func parseAgents(items []string) ([]loadgen.Target, error) {
	if len(items) == 0 {
		return nil, errors.New("--agents: name at least one agent URL")
	}
	var out []loadgen.Target
	for _, it := range items {
		it = strings.TrimSpace(it)
		var t loadgen.Target
		if i := strings.IndexByte(it, '='); i > 0 && !strings.Contains(it[:i], "://") {
			t.Store, t.URL = it[:i], it[i+1:]
			if s, d, ok := strings.Cut(t.Store, "/"); ok {
				t.Store, t.Device = s, d
			}
		} else {
			t.URL = it
		}
		if !strings.HasPrefix(t.URL, "http://") && !strings.HasPrefix(t.URL, "https://") {
			return nil, fmt.Errorf("--agents: %q: the URL must start with http:// or https://", it)
		}
		out = append(out, t)
	}
	return out, nil
}

// parseWindow reads INDEX:START-END.
func parseWindow(s string) (loadgen.Window, error) {
	idx, span, ok := strings.Cut(s, ":")
	from, to, ok2 := strings.Cut(span, "-")
	if !ok || !ok2 {
		return loadgen.Window{}, fmt.Errorf("--offline %q: want INDEX:START-END, e.g. 0:30s-1m", s)
	}
	i, err := strconv.Atoi(idx)
	if err != nil {
		return loadgen.Window{}, fmt.Errorf("--offline %q: agent index: %v", s, err)
	}
	start, err := time.ParseDuration(from)
	if err != nil {
		return loadgen.Window{}, fmt.Errorf("--offline %q: %v", s, err)
	}
	end, err := time.ParseDuration(to)
	if err != nil {
		return loadgen.Window{}, fmt.Errorf("--offline %q: %v", s, err)
	}
	return loadgen.Window{Target: i, Start: start, End: end}, nil
}

// parseMix reads KIND=WEIGHT,...; kinds not named weigh 0. Empty: the
// default mix.
func parseMix(s string) (loadgen.Mix, error) {
	var m loadgen.Mix
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	fields := map[string]*float64{
		"sale": &m.Sale, "return": &m.Return, "receipt": &m.Receipt, "adjust": &m.Adjust, "count": &m.Count,
		"reservation": &m.Reservation, "review": &m.Review, "scan": &m.Scan,
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		p := fields[k]
		if !ok || p == nil {
			return m, fmt.Errorf("--mix %q: want KIND=WEIGHT with KIND one of sale, return, receipt, adjust, count, reservation, review, scan", kv)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 {
			return m, fmt.Errorf("--mix %q: the weight must be a number >= 0", kv)
		}
		*p = x
	}
	if m == (loadgen.Mix{}) {
		return m, errors.New("--mix: every weight is 0")
	}
	return m, nil
}
