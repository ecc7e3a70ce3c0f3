package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/retry"
)

// Generator runs the traffic of Options against its targets once.
type Generator struct {
	o       Options
	client  *http.Client
	ranking []string
	curve   dayCurve
	rec     *recorder

	ran    atomic.Bool
	issued atomic.Int64

	mu sync.Mutex // guards the fields below, and targets' identities during discovery
	// start is set before the tills start, which read it without the lock.
	start    time.Time
	end      time.Time
	targets  []*target
	pending  []Pending
	rejected []Rejection
}

// target is one agent and its counters.
type target struct {
	// Target is filled in by discover (under Generator.mu) before the
	// tills start, and never changes after.
	Target
	idx    int
	shelf  *shelf
	bucket *bucket

	requests, events, accepted, retried, replayed atomic.Int64
	refused, errors, unresolved, unstamped        atomic.Int64
	latency                                       histogram
}

// TargetStats counts one target's traffic (or, in Report.Total, all of it).
type TargetStats struct {
	Target Target
	// Requests and Events were sent (first attempts; one event a request).
	Requests, Events int64
	// Accepted events were answered 202; Replayed of them by a replayed
	// answer to a retry; Unstamped of them came without an HLC (an agent
	// too old to say), which the oracle cannot place.
	Accepted, Replayed, Unstamped int64
	// Retried counts attempts after the first.
	Retried int64
	// Refused events were answered 507 (the agent's disk budget).
	Refused int64
	// Errors are requests answered with another 4xx: a bug (see
	// Report.Rejected).
	Errors int64
	// Unresolved requests had no definitive answer when the run ended.
	Unresolved int64
	// P50, P99 and Max are the latencies of the attempts answered 202.
	P50, P99, Max time.Duration
}

// Pending is a request that never got a definitive answer: its events may
// or may not be durable at the agent.
type Pending struct {
	Target int
	Key    string
	Body   json.RawMessage
	req    request
}

// Rejection is a request answered with a 4xx other than 507.
type Rejection struct {
	Target int
	Key    string
	Status int
	Body   json.RawMessage
	Answer string
}

// Report is what a run did.
type Report struct {
	RunID   string
	Started time.Time
	// Elapsed runs from the first request to the last answer.
	Elapsed time.Duration
	Targets []TargetStats
	Total   TargetStats
	// Accepted holds every accepted event's envelope, in the order the
	// answers arrived.
	Accepted   []events.Envelope
	Unresolved []Pending
	Rejected   []Rejection
}

// EventsPerSecond is the accepted events' rate over the run.
func (r *Report) EventsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Total.Accepted) / r.Elapsed.Seconds()
}

// OK reports whether every request got a definitive answer and none was
// rejected, so that Accepted is the whole truth.
func (r *Report) OK() bool { return len(r.Unresolved) == 0 && len(r.Rejected) == 0 }

// New checks o and builds a generator. It does no I/O.
func New(o Options) (*Generator, error) {
	o.Targets = append([]Target(nil), o.Targets...)
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	client := o.Client
	if client == nil {
		client = &http.Client{
			Timeout: o.RequestTimeout,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:        4 * o.Workers * len(o.Targets),
				MaxIdleConnsPerHost: 2 * o.Workers,
				IdleConnTimeout:     30 * time.Second,
			},
		}
	}
	g := &Generator{o: o, client: client, ranking: rankSKUs(o.SKUs, o.Seed), curve: newDayCurve(), rec: newRecorder(o.Record)}
	for i, t := range o.Targets {
		g.targets = append(g.targets, &target{Target: t, idx: i})
	}
	return g, nil
}

// Run generates the traffic once: until Duration or Events is reached or
// ctx ends, then it lets the requests already sent settle (see
// Options.Settle) and returns the report. An error means the run could not
// start (a target could not be identified); the traffic's own failures are
// in the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	g, err := New(o)
	if err != nil {
		return nil, err
	}
	return g.Run(ctx)
}

// Run generates the traffic; see the package function Run. A Generator
// runs once.
func (g *Generator) Run(ctx context.Context) (*Report, error) {
	if !g.ran.CompareAndSwap(false, true) {
		return nil, errors.New("loadgen: a generator runs once")
	}
	if err := g.discover(ctx); err != nil {
		return nil, err
	}
	shelves := map[string]*shelf{}
	for _, t := range g.targets {
		if shelves[t.Store] == nil {
			shelves[t.Store] = newShelf()
		}
		t.shelf = shelves[t.Store]
	}

	start := time.Now()
	g.mu.Lock()
	g.start = start
	g.mu.Unlock()
	genCtx, stop := context.WithCancel(ctx)
	defer stop()
	if g.o.Duration > 0 {
		var cancel context.CancelFunc
		genCtx, cancel = context.WithDeadline(genCtx, start.Add(g.o.Duration))
		defer cancel()
	}
	// Requests already sent outlive the generation by Settle.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	go func() {
		<-genCtx.Done()
		if g.o.Settle < 0 {
			cancelSend()
			return
		}
		t := time.NewTimer(g.o.Settle)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSend()
		case <-sendCtx.Done():
		}
	}()
	if g.o.Rate > 0 {
		per := g.o.Rate / float64(len(g.targets))
		rate := func(time.Duration) float64 { return per }
		if g.o.Diurnal > 0 {
			rate = func(since time.Duration) float64 {
				phase := float64(since%g.o.Diurnal) / float64(g.o.Diurnal)
				return per * g.curve.at(phase)
			}
		}
		for _, t := range g.targets {
			t.bucket = newBucket(start, per, rate)
		}
	}

	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				g.rec.flush()
			case <-sendCtx.Done():
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for _, t := range g.targets {
		for w := 0; w < g.o.Workers; w++ {
			tr := newTraffic(&g.o, g.ranking, t.shelf, t.Store, t.idx, w)
			wg.Go(func() { g.till(genCtx, sendCtx, stop, t, tr) })
		}
	}
	wg.Wait()
	cancelSend()
	<-flushDone
	g.mu.Lock()
	g.end = time.Now()
	g.mu.Unlock()
	if err := g.rec.flush(); err != nil {
		return g.report(), fmt.Errorf("loadgen: writing the record: %w", err)
	}
	return g.report(), nil
}

// till is one POS: it waits for its store to be open and for a token, sends
// one request and waits for its definitive answer, and again.
func (g *Generator) till(genCtx, sendCtx context.Context, stop context.CancelFunc, t *target, tr *traffic) {
	for {
		if !g.waitOpen(genCtx, t) {
			return
		}
		if t.bucket != nil && !t.bucket.take(genCtx) {
			return
		}
		if genCtx.Err() != nil {
			return
		}
		if g.o.Events > 0 && g.issued.Add(1) > g.o.Events {
			stop()
			return
		}
		req, err := tr.next()
		if err != nil {
			g.o.Logger.Error("loadgen: building an event", "err", err)
			t.errors.Add(1)
			continue
		}
		key := fmt.Sprintf("lg-%s-%s-%d", g.o.RunID, tr.till, tr.n)
		t.requests.Add(1)
		t.events.Add(int64(len(req.drafts)))
		g.send(sendCtx, t, key, req)
	}
}

// waitOpen waits while t's POS is closed by an offline window; false if
// ctx ends first.
func (g *Generator) waitOpen(ctx context.Context, t *target) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		since := time.Since(g.start)
		var until time.Duration
		for _, w := range g.o.Offline {
			if w.Target == t.idx && since >= w.Start && since < w.End {
				until = max(until, w.End)
			}
		}
		if until == 0 {
			return true
		}
		if retry.Sleep(ctx, until-since) != nil {
			return false
		}
	}
}

// outcome classifies one attempt's answer.
type outcome int

const (
	outRetry    outcome = iota // no definitive answer: send again
	outAccepted                // 202
	outRefused                 // 507
	outRejected                // another 4xx, or a 202 that makes no sense
)

// answer is the 202 body of POST /v1/events (the agent's posapi.Accepted).
type answer struct {
	IDs   []string        `json:"ids"`
	Epoch uint64          `json:"epoch"`
	Seqs  []uint64        `json:"seqs"`
	HLCs  []hlc.Timestamp `json:"hlcs"`
}

// send delivers req under key until it gets a definitive answer or ctx
// ends (then it is pending).
func (g *Generator) send(ctx context.Context, t *target, key string, req request) {
	backoff := retry.Backoff{Min: g.o.Backoff, Max: g.o.MaxBackoff}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t.retried.Add(1)
		}
		began := time.Now()
		out, ans, replayed, status, text := g.post(ctx, t, key, req)
		switch out {
		case outAccepted:
			t.latency.add(time.Since(began))
			g.accept(t, req, ans, replayed)
			req.done(true)
			return
		case outRefused:
			t.refused.Add(int64(len(req.drafts)))
			req.done(false)
			return
		case outRejected:
			t.errors.Add(1)
			g.o.Logger.Error("loadgen: request rejected", "target", t.String(), "key", key, "status", status, "answer", text)
			g.mu.Lock()
			if len(g.rejected) < 1000 {
				g.rejected = append(g.rejected, Rejection{Target: t.idx, Key: key, Status: status, Body: req.body, Answer: text})
			}
			g.mu.Unlock()
			req.done(false)
			return
		}
		g.o.Logger.Debug("loadgen: retrying", "target", t.String(), "key", key, "status", status, "err", text)
		if backoff.Wait(ctx) != nil {
			t.unresolved.Add(1)
			g.mu.Lock()
			g.pending = append(g.pending, Pending{Target: t.idx, Key: key, Body: req.body, req: req})
			g.mu.Unlock()
			return
		}
	}
}

// post makes one attempt.
func (g *Generator) post(ctx context.Context, t *target, key string, req request) (out outcome, ans answer, replayed bool, status int, text string) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/v1/events", bytes.NewReader(req.body))
	if err != nil {
		return outRetry, ans, false, 0, err.Error()
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Idempotency-Key", key)
	resp, err := g.client.Do(hr)
	if err != nil {
		return outRetry, ans, false, 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	status = resp.StatusCode
	if err != nil {
		return outRetry, ans, false, status, "reading the answer: " + err.Error()
	}
	text = string(bytes.TrimSpace(body))
	switch {
	case status == http.StatusAccepted:
		if err := json.Unmarshal(body, &ans); err != nil {
			// Cut short: the events are durable, a retry is answered with
			// the same ids.
			return outRetry, ans, false, status, "a 202 without a readable body: " + err.Error()
		}
		if len(ans.IDs) != len(req.drafts) || len(ans.Seqs) != len(req.drafts) || ans.Epoch == 0 {
			return outRejected, ans, false, status, "a 202 that does not match the request: " + text
		}
		return outAccepted, ans, resp.Header.Get("Idempotent-Replayed") == "true", status, text
	case status == http.StatusInsufficientStorage:
		return outRefused, ans, false, status, text
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return outRetry, ans, false, status, text
	}
	return outRejected, ans, false, status, text
}

// accept records the envelopes of an accepted request.
func (g *Generator) accept(t *target, req request, ans answer, replayed bool) {
	envs := make([]events.Envelope, len(req.drafts))
	for i, d := range req.drafts {
		envs[i] = events.Envelope{
			V:      events.CurrentVersion,
			ID:     ans.IDs[i],
			Origin: events.Origin{Store: t.Store, Device: t.Device, Epoch: ans.Epoch, Seq: ans.Seqs[i]},
			Kind:   d.Kind,
			Data:   d.Data,
		}
		if i < len(ans.HLCs) {
			envs[i].HLC = ans.HLCs[i]
		}
		if envs[i].HLC.IsZero() {
			t.unstamped.Add(1)
		}
	}
	t.accepted.Add(int64(len(envs)))
	if replayed {
		t.replayed.Add(int64(len(envs)))
	}
	g.rec.add(envs)
}

// discover fills in every target's store and device from its agent's
// GET /v1/status, and checks the given ones.
func (g *Generator) discover(ctx context.Context) error {
	for _, t := range g.targets {
		if t.Store != "" && t.Device != "" {
			continue
		}
		id, err := Identify(ctx, g.client, t.URL)
		if err != nil {
			return err
		}
		if t.Store != "" && t.Store != id.Store {
			return fmt.Errorf("loadgen: %s is the agent of store %q, not %q", t.URL, id.Store, t.Store)
		}
		g.mu.Lock() // Stats may be reading
		t.Store, t.Device = id.Store, id.Device
		g.mu.Unlock()
	}
	seen := map[[2]string]string{}
	for _, t := range g.targets {
		k := [2]string{t.Store, t.Device}
		if u, dup := seen[k]; dup {
			return fmt.Errorf("loadgen: %s and %s are both %s/%s", u, t.URL, t.Store, t.Device)
		}
		seen[k] = t.URL
	}
	return nil
}

// Identify asks an agent who it is (GET /v1/status): its store, device and
// outbox epoch.
func Identify(ctx context.Context, client *http.Client, agentURL string) (Target, error) {
	if client == nil {
		client = &http.Client{Timeout: DefaultRequestTimeout}
	}
	u := trimSlash(agentURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/v1/status", nil)
	if err != nil {
		return Target{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Target{}, fmt.Errorf("loadgen: agent %s: %w", u, err)
	}
	defer resp.Body.Close()
	var st struct {
		Store  string `json:"store"`
		Device string `json:"device"`
	}
	if resp.StatusCode != http.StatusOK {
		return Target{}, fmt.Errorf("loadgen: agent %s: GET /v1/status: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Target{}, fmt.Errorf("loadgen: agent %s: GET /v1/status: %w", u, err)
	}
	if events.ValidToken(st.Store) != nil || events.ValidToken(st.Device) != nil {
		return Target{}, fmt.Errorf("loadgen: agent %s: GET /v1/status names no store and device", u)
	}
	return Target{Store: st.Store, Device: st.Device, URL: u}, nil
}

// Stats returns each target's counters so far, and their total; safe while
// the run goes on.
func (g *Generator) Stats() (per []TargetStats, total TargetStats) {
	var all histogram
	g.mu.Lock()
	ids := make([]Target, len(g.targets))
	for i, t := range g.targets {
		ids[i] = t.Target
	}
	g.mu.Unlock()
	for i, t := range g.targets {
		s := TargetStats{
			Target: ids[i], Requests: t.requests.Load(), Events: t.events.Load(),
			Accepted: t.accepted.Load(), Replayed: t.replayed.Load(), Unstamped: t.unstamped.Load(),
			Retried: t.retried.Load(), Refused: t.refused.Load(), Errors: t.errors.Load(),
			Unresolved: t.unresolved.Load(),
			P50:        t.latency.quantile(0.5), P99: t.latency.quantile(0.99),
		}
		t.latency.mu.Lock()
		s.Max = t.latency.max
		t.latency.mu.Unlock()
		all.merge(&t.latency)
		per = append(per, s)
		total.Requests += s.Requests
		total.Events += s.Events
		total.Accepted += s.Accepted
		total.Replayed += s.Replayed
		total.Unstamped += s.Unstamped
		total.Retried += s.Retried
		total.Refused += s.Refused
		total.Errors += s.Errors
		total.Unresolved += s.Unresolved
	}
	total.P50, total.P99, total.Max = all.quantile(0.5), all.quantile(0.99), all.max
	return per, total
}

// Accepted returns the envelopes accepted so far; safe while the run goes
// on.
func (g *Generator) Accepted() []events.Envelope { return g.rec.snapshot() }

// Elapsed is the time since the run started (until it ended, once it has).
func (g *Generator) Elapsed() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.start.IsZero():
		return 0
	case g.end.IsZero():
		return time.Since(g.start)
	}
	return g.end.Sub(g.start)
}

// Rate is the events per second the pacing asks of all targets now (with
// Diurnal, it follows the day); 0 when unpaced.
func (g *Generator) Rate() float64 {
	if g.o.Rate == 0 {
		return 0
	}
	if g.o.Diurnal == 0 {
		return g.o.Rate
	}
	since := g.Elapsed()
	return g.o.Rate * g.curve.at(float64(since%g.o.Diurnal)/float64(g.o.Diurnal))
}

// Resolve retries the requests a finished run left unresolved, with their
// own keys, until each gets a definitive answer or ctx ends, and returns
// the updated report. Use it once the agents are back: an agent remembers
// keys for 24 hours, so an event it had written is answered, not written
// twice.
func (g *Generator) Resolve(ctx context.Context) (*Report, error) {
	g.mu.Lock()
	if g.end.IsZero() {
		g.mu.Unlock()
		return nil, errors.New("loadgen: Resolve before the run ended")
	}
	pending := g.pending
	g.pending = nil
	g.mu.Unlock()
	for _, p := range pending {
		t := g.targets[p.Target]
		t.unresolved.Add(-1)
		g.send(ctx, t, p.Key, p.req)
	}
	if err := g.rec.flush(); err != nil {
		return g.report(), fmt.Errorf("loadgen: writing the record: %w", err)
	}
	return g.report(), nil
}

func (g *Generator) report() *Report {
	per, total := g.Stats()
	g.mu.Lock()
	defer g.mu.Unlock()
	r := &Report{
		RunID: g.o.RunID, Started: g.start, Elapsed: g.end.Sub(g.start),
		Targets: per, Total: total, Accepted: g.rec.snapshot(),
		Unresolved: append([]Pending(nil), g.pending...),
		Rejected:   append([]Rejection(nil), g.rejected...),
	}
	return r
}
