// Package runner schedules and delivers the automation's jobs: it turns
// trigger events into jobs (package automation's rules) stored in the
// hub's database, and, when they are due, checks the customer's consent
// and the rule's frequency cap, then sends them as signed webhooks or NATS
// messages, retrying with backoff until a job is delivered or dead.
//
// Guarantees: a scheduled job survives a hub restart (it is a row); a job
// is sent by one replica at a time (a lease row: ClaimJobs); a delivery
// cut short (a receiver gone mid-request, a replica killed) is tried again
// with the same idempotency key, so delivery is at least once and a
// receiver that honours the key sees each message once. Consent is asked
// when the job is sent, never when it is planned: a customer who opts out
// in between gets nothing.
//
// The frequency cap is reserved when a job is sent (store.ReserveCap): a
// message being sent counts, so two replicas sending two jobs of one
// customer at once cannot both pass it. A job that fails after reserving
// gives its place back when its lease ends.
package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/egress"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// ConsentChecker answers whether customerID may receive a message for
// purpose on channel at time at (package consent's rule over the
// customer's decisions). The customer store implements it.
type ConsentChecker interface {
	May(ctx context.Context, customerID, purpose, channel string, at time.Time) (bool, error)
}

// Recheck tells, when a job is due, whether its trigger still holds: the
// cart is still abandoned, the fitting-room request still unanswered. A
// trigger without a Recheck is sent as planned.
type Recheck func(ctx context.Context, ev automation.Event) (bool, error)

// Queue is the durable schedule: *store.Store.
type Queue interface {
	Rules(ctx context.Context) ([]automation.Rule, error)
	ScheduleJobs(ctx context.Context, jobs []automation.Job) (int, error)
	ClaimJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.ClaimedJob, error)
	FinishJobs(ctx context.Context, owner string, jobs []store.FinishedJob) (lost []string, err error)
	ReserveCap(ctx context.Context, id, owner, rule, customer string, t time.Time, max int) (bool, error)
}

var _ Queue = (*store.Store)(nil)

// Config builds a Runner.
type Config struct {
	Queue   Queue
	Consent ConsentChecker
	// Facts answers conditions on segments and profiles (nil: those
	// conditions see no fact).
	Facts    automation.Facts
	Rechecks map[automation.Trigger]Recheck
	// Interest and Stock feed the back_in_stock trigger (StockChanged);
	// without Interest it never fires.
	Interest Interest
	Stock    StockReader
	// Assists feeds the fitting_room_unanswered trigger, and says when
	// a request was answered (nil: the trigger comes only through Handle).
	Assists AssistSource
	// NATS publishes the nats actions (nil: they fail and retry).
	NATS *nats.Conn
	// Egress is where webhooks may go (package egress): the hosts HQ
	// allowed and whether loopback is (tests, a local run). A webhook
	// whose host it refuses is a dead letter. The zero Policy sends none.
	Egress egress.Policy
	// HTTP sends webhooks (default: Egress.Client with a 10 s timeout).
	// One given must dial through Egress.Transport (a test's timing
	// wrapper); it follows no redirect either way.
	HTTP *http.Client
	// Owner names this replica in leases (required, unique per process).
	Owner string
	// Lease is how long a claimed job is this replica's (default 30 s;
	// longer than a delivery can take).
	Lease time.Duration
	// Poll is how often due jobs are looked for (default 1 s); Poke
	// looks at once.
	Poll time.Duration
	// Workers deliver in parallel (default 8).
	Workers int
	// RetryMin and RetryMax bound the backoff between attempts (default
	// 5 s and 10 min).
	RetryMin, RetryMax time.Duration
	// RulesEvery is how often rules are reloaded (default 5 s).
	RulesEvery time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Runner evaluates events and delivers jobs. Handle may be called from any
// goroutine; Run delivers until its context ends or Close.
type Runner struct {
	cfg   Config
	poke  chan struct{}
	stock chan string
	// stockChecked counts the SKUs watchStock has read.
	stockChecked atomic.Int64
	mu           sync.Mutex
	engine       *automation.Engine
	rules        map[string]automation.Rule
	loaded       time.Time

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// ErrConfig is wrapped by New's complaints.
var ErrConfig = errors.New("runner: invalid config")

// New checks cfg and fills its defaults.
func New(cfg Config) (*Runner, error) {
	if cfg.Queue == nil || cfg.Consent == nil || cfg.Owner == "" {
		return nil, fmt.Errorf("%w: queue, consent and owner are required", ErrConfig)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = cfg.Egress.Client(10 * time.Second)
	} else {
		c := *cfg.HTTP
		c.CheckRedirect = egress.NoRedirects
		cfg.HTTP = &c
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Lease, 30*time.Second)
	def(&cfg.Poll, time.Second)
	def(&cfg.RetryMin, 5*time.Second)
	def(&cfg.RetryMax, 10*time.Minute)
	def(&cfg.RulesEvery, 5*time.Second)
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Assists != nil && cfg.Rechecks[automation.FittingRoomUnanswered] == nil {
		rc := make(map[automation.Trigger]Recheck, len(cfg.Rechecks)+1)
		for k, v := range cfg.Rechecks {
			rc[k] = v
		}
		cfg.Rechecks = rc
	}
	r := &Runner{cfg: cfg, poke: make(chan struct{}, 1), stock: make(chan string, 4096), engine: automation.NewEngine(nil)}
	if cfg.Assists != nil && r.cfg.Rechecks[automation.FittingRoomUnanswered] == nil {
		r.cfg.Rechecks[automation.FittingRoomUnanswered] = r.answeredRecheck
	}
	return r, nil
}

// Poke makes Run look for due jobs now.
func (r *Runner) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// ReloadRules reads the rules now (HQ changed one).
func (r *Runner) ReloadRules(ctx context.Context) error {
	rules, err := r.cfg.Queue.Rules(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]automation.Rule, len(rules))
	for _, x := range rules {
		byID[x.ID] = x
	}
	r.mu.Lock()
	r.engine, r.rules, r.loaded = automation.NewEngine(rules), byID, r.cfg.Now()
	r.mu.Unlock()
	return nil
}

func (r *Runner) current(ctx context.Context) (*automation.Engine, map[string]automation.Rule, error) {
	r.mu.Lock()
	stale := r.rules == nil || r.cfg.Now().Sub(r.loaded) >= r.cfg.RulesEvery
	r.mu.Unlock()
	if stale {
		if err := r.ReloadRules(ctx); err != nil {
			return nil, nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.engine, r.rules, nil
}

// Handle evaluates events against the rules and schedules the jobs they
// make; it returns how many jobs were new. An invalid event is skipped
// and reported in the error, the others still scheduled.
func (r *Runner) Handle(ctx context.Context, evs ...automation.Event) (int, error) {
	engine, _, err := r.current(ctx)
	if err != nil {
		return 0, err
	}
	var jobs []automation.Job
	var errs []error
	for _, ev := range evs {
		var err error
		if jobs, err = engine.Plan(ev, r.cfg.Facts, jobs); err != nil {
			errs = append(errs, fmt.Errorf("event %s: %w", ev.ID, err))
		}
	}
	n, err := r.cfg.Queue.ScheduleJobs(ctx, jobs)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		r.Poke()
	}
	return n, errors.Join(errs...)
}

// Run delivers due jobs until ctx ends or Close; it returns nil then.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.runMu.Lock()
	if r.cancel != nil {
		r.runMu.Unlock()
		cancel()
		return errors.New("runner: already running")
	}
	r.cancel, r.done = cancel, done
	r.runMu.Unlock()
	defer close(done)
	var stockDone sync.WaitGroup
	stockDone.Add(1)
	go func() { defer stockDone.Done(); r.watchStock(ctx) }()
	defer stockDone.Wait()
	defer cancel()
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	for {
		if err := r.feedAssists(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("automation: fitting-room requests", "err", err)
		}
		_, full, err := r.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("automation: deliver", "err", err)
		}
		if full && err == nil {
			continue // more are due: no wait
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.poke:
		}
	}
}

// Close stops Run and waits for the deliveries in flight.
func (r *Runner) Close() error {
	r.runMu.Lock()
	cancel, done := r.cancel, r.done
	r.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Tick claims the jobs due now, delivers them, and records their outcomes
// in one transaction; it returns how many it claimed, and full when that
// was as many as it could take (more may be due).
func (r *Runner) Tick(ctx context.Context) (claimed int, full bool, err error) {
	_, rules, err := r.current(ctx)
	if err != nil {
		return 0, false, err
	}
	limit := r.cfg.Workers * 4
	jobs, err := r.cfg.Queue.ClaimJobs(ctx, r.cfg.Owner, r.cfg.Now(), r.cfg.Lease, limit)
	if err != nil || len(jobs) == 0 {
		return 0, false, err
	}
	outcomes := make([]store.FinishedJob, len(jobs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(r.cfg.Workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outcomes[i] = store.FinishedJob{ID: jobs[i].ID, Outcome: r.attempt(ctx, rules, jobs[i])}
			}
		}()
	}
	for i := range jobs {
		work <- i
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		// Shutting down: record what was delivered; the others' leases
		// run out and another attempt comes.
		outcomes = slices.DeleteFunc(outcomes, func(f store.FinishedJob) bool { return f.Outcome.State != store.JobDone })
	}
	// A failure to record leaves the leases to run out: the jobs are tried
	// again, with the same keys.
	lost, err := r.cfg.Queue.FinishJobs(context.WithoutCancel(ctx), r.cfg.Owner, outcomes)
	if len(lost) > 0 {
		r.cfg.Logger.Warn("automation: leases lost before the outcome was recorded", "jobs", len(lost))
	}
	return len(jobs), len(jobs) == limit, err
}

func (r *Runner) attempt(ctx context.Context, rules map[string]automation.Rule, j store.ClaimedJob) store.JobOutcome {
	rule, ok := rules[j.Rule]
	switch {
	case !ok:
		return store.JobOutcome{State: store.JobSkipped, Reason: "rule deleted"}
	case !rule.Enabled:
		return store.JobOutcome{State: store.JobSkipped, Reason: "rule disabled"}
	}
	retry := func(reason string) store.JobOutcome {
		if j.Attempt >= automation.MaxAttempts {
			return store.JobOutcome{State: store.JobDead, Reason: fmt.Sprintf("attempt %d of %d: %s", j.Attempt, automation.MaxAttempts, reason)}
		}
		return store.JobOutcome{State: store.JobScheduled, Reason: reason,
			RetryAt: r.cfg.Now().Add(automation.RetryDelay(j.Attempt, r.cfg.RetryMin, r.cfg.RetryMax))}
	}
	if rc := r.cfg.Rechecks[j.Trigger]; rc != nil {
		still, err := rc(ctx, j.Event)
		if err != nil {
			return retry("recheck: " + err.Error())
		}
		if !still {
			return store.JobOutcome{State: store.JobSkipped, Reason: "trigger no longer holds"}
		}
	}
	now := r.cfg.Now()
	if rule.Purpose != "" {
		// Asked now, at send time: a decision taken since the job was
		// planned counts.
		ok, err := r.cfg.Consent.May(ctx, j.Customer, string(rule.Purpose), string(rule.Channel), now)
		if err != nil {
			return retry("consent: " + err.Error())
		}
		if !ok {
			return store.JobOutcome{State: store.JobSkipped, Reason: "no consent for " + string(rule.Purpose)}
		}
	}
	if rule.Cap.Max > 0 && j.Customer != "" {
		ok, err := r.cfg.Queue.ReserveCap(ctx, j.ID, r.cfg.Owner, rule.ID, j.Customer, now.Add(-rule.Cap.Per()), rule.Cap.Max)
		if err != nil {
			return retry("frequency cap: " + err.Error())
		}
		if !ok {
			return store.JobOutcome{State: store.JobSkipped, Reason: fmt.Sprintf("frequency cap: %d in %s", rule.Cap.Max, rule.Cap.Per())}
		}
	}
	body, err := json.Marshal(Payload{ID: j.ID, Rule: rule.ID, Trigger: j.Trigger, Customer: j.Customer, Event: j.Event})
	if err != nil {
		return store.JobOutcome{State: store.JobDead, Reason: err.Error()}
	}
	start := time.Now()
	var permanent bool
	switch rule.Action.Kind {
	case automation.ActionWebhook:
		permanent, err = r.webhook(ctx, rule.Action, j, body)
	case automation.ActionNATS:
		err = r.publish(ctx, rule.Action, j, body)
	default:
		permanent, err = true, fmt.Errorf("unknown action %q", rule.Action.Kind)
	}
	switch {
	case err == nil:
		return store.JobOutcome{State: store.JobDone, Latency: time.Since(start)}
	case permanent:
		return store.JobOutcome{State: store.JobDead, Reason: err.Error()}
	}
	return retry(err.Error())
}

// Payload is the body of a delivery: the same bytes on every attempt (a
// retry's new due time is not in it).
type Payload struct {
	// ID is the idempotency key (also in the Omni-Idempotency-Key header).
	ID       string             `json:"id"`
	Rule     string             `json:"rule"`
	Trigger  automation.Trigger `json:"trigger"`
	Customer string             `json:"customer,omitempty"`
	Event    automation.Event   `json:"event"`
}

// webhook posts body; permanent reports a refusal retrying cannot change
// (a 4xx other than 408, 409, 425 and 429).
func (r *Runner) webhook(ctx context.Context, a automation.Action, j store.ClaimedJob, body []byte) (permanent bool, err error) {
	// Checked again at send time: the allow-list may have shrunk since
	// the rule was saved. The address checks are the dialer's.
	if _, err := r.cfg.Egress.CheckURL(a.URL); err != nil {
		return true, fmt.Errorf("webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "omnisync-automation")
	req.Header.Set(automation.HeaderIdempotencyKey, j.ID)
	req.Header.Set(automation.HeaderAttempt, fmt.Sprint(j.Attempt))
	req.Header.Set(automation.HeaderSignature, automation.Sign(a.Secret, r.cfg.Now(), body))
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		// The URL's query may hold a token: say only that it failed.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		// A refused address or a redirect is the same on every attempt.
		permanent := errors.Is(err, egress.ErrAddress) || errors.Is(err, egress.ErrHost) || errors.Is(err, egress.ErrRedirect)
		return permanent, fmt.Errorf("webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 400 && c < 500 && c != 408 && c != 409 && c != 425 && c != 429:
		return true, fmt.Errorf("webhook: refused with %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook: %s", resp.Status)
	}
}

// publish sends body on the rule's subject and waits for the server to
// have it (a flush); the idempotency key rides in Nats-Msg-Id, so a
// JetStream stream on the subject drops a repeat.
func (r *Runner) publish(ctx context.Context, a automation.Action, j store.ClaimedJob, body []byte) error {
	nc := r.cfg.NATS
	if nc == nil {
		return errors.New("nats: no connection")
	}
	m := nats.NewMsg(a.Subject)
	m.Data = body
	m.Header.Set(nats.MsgIdHdr, j.ID)
	m.Header.Set(automation.HeaderIdempotencyKey, j.ID)
	if err := nc.PublishMsg(m); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return nil
}
