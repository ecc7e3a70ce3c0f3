package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
)

// Automation job states, as stored.
const (
	// JobScheduled waits for its due time (or for a retry, or for its
	// lease to end after a replica died sending it).
	JobScheduled = "scheduled"
	// JobDone was delivered.
	JobDone = "done"
	// JobSkipped was not sent, on purpose: no consent when it was due,
	// the frequency cap, the trigger no longer true, its rule gone.
	JobSkipped = "skipped"
	// JobDead failed every attempt, or was refused for good: a dead
	// letter for HQ.
	JobDead = "dead"
)

// PutRule creates or replaces an automation rule (SaveRule, the secret
// it may make not shown).
func (s *Store) PutRule(ctx context.Context, r automation.Rule) error {
	_, err := s.SaveRule(ctx, r)
	return err
}

// SaveRule creates or replaces an automation rule. A webhook's signing
// secret is sealed with the customer keys (ErrNoCustomerKeys without
// them), apart from the rule's JSON. A webhook rule given no secret keeps
// the one it has or, new, gets a random one, returned as made: the only
// time anyone sees it.
func (s *Store) SaveRule(ctx context.Context, r automation.Rule) (made string, err error) {
	if err := r.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	secret := r.Action.Secret
	r.Action.Secret = ""
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	webhook := r.Action.Kind == automation.ActionWebhook
	if webhook && s.custKeys == nil {
		return "", ErrNoCustomerKeys
	}
	err = s.retry(ctx, "put rule", func() error {
		made = ""
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var enc []byte
		if webhook {
			sec := secret
			if sec == "" {
				old, err := s.ruleSecret(ctx, tx, r.ID)
				if err != nil {
					return err
				}
				sec = old
			}
			if sec == "" {
				sec = newWebhookSecret()
				made = sec
			}
			enc = s.custKeys.SealString(sec, sealAD("automation_rules.secret_enc", r.ID))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO automation_rules (id, body, secret_enc, updated_ms) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET body = excluded.body, secret_enc = excluded.secret_enc, updated_ms = excluded.updated_ms`,
			r.ID, string(b), enc, s.now().UnixMilli()); err != nil {
			return err
		}
		return tx.Commit()
	})
	return made, err
}

// newWebhookSecret is 256 random bits, base64url, with a prefix that says
// what it is.
func newWebhookSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ruleSecret is the stored secret of rule id ("" when none).
func (s *Store) ruleSecret(ctx context.Context, q dbq, id string) (string, error) {
	var body string
	var enc []byte
	err := q.QueryRowContext(ctx, "SELECT body, secret_enc FROM automation_rules WHERE id = $1", id).Scan(&body, &enc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	r, err := s.openRule(id, body, enc)
	return r.Action.Secret, err
}

// openRule reads a stored rule, its secret opened: from secret_enc, or
// from the JSON where an older hub left it.
func (s *Store) openRule(id, body string, enc []byte) (automation.Rule, error) {
	var r automation.Rule
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return r, fmt.Errorf("store: stored rule does not parse: %w", err)
	}
	if len(enc) > 0 {
		if s.custKeys == nil {
			return r, fmt.Errorf("store: rule %s: %w", id, ErrNoCustomerKeys)
		}
		sec, err := s.custKeys.OpenString(enc, sealAD("automation_rules.secret_enc", id))
		if err != nil {
			return r, fmt.Errorf("store: rule %s secret: %w", id, err)
		}
		r.Action.Secret = sec
	}
	return r, nil
}

// DeleteRule removes a rule; its scheduled jobs are skipped when due.
func (s *Store) DeleteRule(ctx context.Context, id string) error {
	var n int64
	err := s.retry(ctx, "delete rule", func() error {
		res, err := s.w.ExecContext(ctx, "DELETE FROM automation_rules WHERE id = $1", id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: rule %q", ErrNotFound, id)
	}
	return err
}

// Rules returns every automation rule by id, secrets included: callers
// showing them use Rule.Redacted.
func (s *Store) Rules(ctx context.Context) ([]automation.Rule, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, body, secret_enc FROM automation_rules ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("store: rules: %w", err)
	}
	defer rows.Close()
	var out []automation.Rule
	for rows.Next() {
		var id, body string
		var enc []byte
		if err := rows.Scan(&id, &body, &enc); err != nil {
			return nil, err
		}
		r, err := s.openRule(id, body, enc)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sealRuleSecrets moves the webhook secrets an older hub kept in its
// rules' JSON into secret_enc, sealed; it returns how many it moved.
func (s *Store) sealRuleSecrets(ctx context.Context) (int, error) {
	n := 0
	err := s.retry(ctx, "seal rule secrets", func() error {
		n = 0
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, "SELECT id, body FROM automation_rules WHERE secret_enc IS NULL ORDER BY id")
		if err != nil {
			return err
		}
		type todo struct{ id, body, secret string }
		var ts []todo
		for rows.Next() {
			var t todo
			if err := rows.Scan(&t.id, &t.body); err != nil {
				rows.Close()
				return err
			}
			var r automation.Rule
			if json.Unmarshal([]byte(t.body), &r) == nil && r.Action.Secret != "" {
				r.Action.Secret, t.secret = "", r.Action.Secret
				b, _ := json.Marshal(r)
				t.body = string(b)
				ts = append(ts, t)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, t := range ts {
			enc := s.custKeys.SealString(t.secret, sealAD("automation_rules.secret_enc", t.id))
			if _, err := tx.ExecContext(ctx, "UPDATE automation_rules SET body = $1, secret_enc = $2 WHERE id = $3", t.body, enc, t.id); err != nil {
				return err
			}
		}
		n = len(ts)
		return tx.Commit()
	})
	return n, err
}

// ScheduleJobs stores jobs to send at their due time. A job already
// scheduled (the same rule and event evaluated again, by a replay or by
// another replica) is left as it is; it returns how many were new.
func (s *Store) ScheduleJobs(ctx context.Context, jobs []automation.Job) (int, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	jobs = slices.Clone(jobs)
	slices.SortFunc(jobs, func(a, b automation.Job) int { return cmp.Compare(a.ID, b.ID) })
	jobs = slices.CompactFunc(jobs, func(a, b automation.Job) bool { return a.ID == b.ID })
	now := s.now().UnixMilli()
	rs := newRowset(text("id"), text("rule"), text("trigger_name"), text("customer"), text("event"), integer("due_ms"))
	for _, j := range jobs {
		ev, err := json.Marshal(j.Event)
		if err != nil {
			return 0, err
		}
		rs.add(j.ID, j.Rule, string(j.Trigger), j.Customer, string(ev), j.Due.UnixMilli())
	}
	var n int64
	// One transaction: one commit (one fsync on SQLite) for every chunk.
	err := s.retry(ctx, "schedule jobs", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		n, err = s.execRowsN(ctx, tx, rs, "j", func(a *args, j string) string {
			st, now := a.add(JobScheduled), a.add(now)
			return `INSERT INTO automation_jobs (id, rule, trigger_name, customer, event, due_ms, state, created_ms, updated_ms)
SELECT id, rule, trigger_name, customer, event, due_ms, ` + st + `, ` + now + `, ` + now + ` FROM ` + j + s.d.inOrder() + `
ON CONFLICT (id) DO NOTHING`
		})
		if err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return 0, fmt.Errorf("store: schedule jobs: %w", err)
	}
	return int(n), nil
}

// ClaimedJob is a job a replica holds the lease of, with the attempt it is
// making (from 1).
type ClaimedJob struct {
	automation.Job
	Attempt int
}

// ClaimJobs leases up to limit jobs due at now to owner until now+lease:
// no other replica claims them meanwhile (PostgreSQL: FOR UPDATE SKIP
// LOCKED; SQLite: one writer). A job whose lease ended unfinished (its
// replica died mid-delivery) is claimed again: delivery is at least once,
// and the job's id, the idempotency key, is the same.
func (s *Store) ClaimJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]ClaimedJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowMS := now.UnixMilli()
	q := `UPDATE automation_jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_ms = $3
WHERE id IN (SELECT id FROM automation_jobs WHERE state = $4 AND due_ms <= $3 AND lease_until <= $3 ORDER BY due_ms, id LIMIT ` +
		strconv.Itoa(limit) + s.d.skipLocked() + `)
RETURNING id, rule, trigger_name, customer, event, due_ms, attempts`
	var out []ClaimedJob
	err := s.retry(ctx, "claim jobs", func() error {
		out = out[:0]
		rows, err := s.w.QueryContext(ctx, q, owner, nowMS+lease.Milliseconds(), nowMS, JobScheduled)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j ClaimedJob
			var trig, ev string
			var due int64
			if err := rows.Scan(&j.ID, &j.Rule, &trig, &j.Customer, &ev, &due, &j.Attempt); err != nil {
				return err
			}
			j.Trigger, j.Due = automation.Trigger(trig), time.UnixMilli(due)
			if err := json.Unmarshal([]byte(ev), &j.Event); err != nil {
				return fmt.Errorf("job %s: stored event: %w", j.ID, err)
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim jobs: %w", err)
	}
	slices.SortFunc(out, func(a, b ClaimedJob) int { return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// ErrLeaseLost is returned by FinishJob when owner no longer holds the
// job's lease (it ran out and another replica claimed the job): the
// other replica's outcome stands.
var ErrLeaseLost = errors.New("store: job lease lost")

// JobOutcome is what became of an attempt.
type JobOutcome struct {
	// State is JobDone, JobSkipped, JobDead, or JobScheduled to retry at
	// RetryAt.
	State   string
	Reason  string
	RetryAt time.Time
	// Latency is the delivery's time (done jobs).
	Latency time.Duration
}

// FinishJob records the outcome of owner's attempt at job id.
func (s *Store) FinishJob(ctx context.Context, id, owner string, o JobOutcome) error {
	lost, err := s.FinishJobs(ctx, owner, []FinishedJob{{ID: id, Outcome: o}})
	if err == nil && len(lost) > 0 {
		err = fmt.Errorf("%w: %s", ErrLeaseLost, id)
	}
	return err
}

// FinishedJob is one job's outcome, for FinishJobs.
type FinishedJob struct {
	ID      string
	Outcome JobOutcome
}

// FinishJobs records the outcomes of owner's attempts in one transaction
// (one commit for a whole round of deliveries); it returns the ids whose
// lease owner had lost, whose outcome was not recorded.
func (s *Store) FinishJobs(ctx context.Context, owner string, jobs []FinishedJob) (lost []string, err error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	jobs = slices.Clone(jobs)
	slices.SortFunc(jobs, func(a, b FinishedJob) int { return cmp.Compare(a.ID, b.ID) })
	now := s.now().UnixMilli()
	err = s.retry(ctx, "finish jobs", func() error {
		lost = lost[:0]
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, j := range jobs {
			o := j.Outcome
			var res sql.Result
			if o.State == JobScheduled {
				res, err = tx.ExecContext(ctx, `UPDATE automation_jobs SET due_ms = $1, lease_owner = '', lease_until = 0, reason = $2, updated_ms = $3
WHERE id = $4 AND lease_owner = $5 AND state = $6`, o.RetryAt.UnixMilli(), clip(o.Reason), now, j.ID, owner, JobScheduled)
			} else {
				res, err = tx.ExecContext(ctx, `UPDATE automation_jobs SET state = $1, lease_owner = '', lease_until = 0, reason = $2, updated_ms = $3,
	done_ms = $3, latency_ms = $4 WHERE id = $5 AND lease_owner = $6 AND state = $7`,
					o.State, clip(o.Reason), now, o.Latency.Milliseconds(), j.ID, owner, JobScheduled)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				lost = append(lost, j.ID)
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("store: finish jobs: %w", err)
	}
	return lost, nil
}

func clip(s string) string {
	if len(s) > 500 {
		s = s[:500]
	}
	return strings.ToValidUTF8(s, "")
}

// SentSince counts rule's messages delivered to customer since t.
func (s *Store) SentSince(ctx context.Context, rule, customer string, t time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM automation_jobs WHERE rule = $1 AND customer = $2 AND done_ms >= $3 AND state = $4",
		rule, customer, t.UnixMilli(), JobDone).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: sent since: %w", err)
	}
	return n, nil
}

// ReserveCap takes one of the max messages rule may send customer since
// t for job id, which owner holds the lease of: it counts the messages
// delivered since t and those being sent now (jobs that reserved and
// still hold their lease), and reserves when fewer than max. The count
// and the reservation are one transaction holding the rows of that rule
// and customer (PostgreSQL: FOR UPDATE; SQLite: one writer), so replicas
// sending two jobs of one customer at once cannot both pass the cap.
func (s *Store) ReserveCap(ctx context.Context, id, owner, rule, customer string, t time.Time, max int) (bool, error) {
	var ok bool
	err := s.retry(ctx, "reserve cap", func() error {
		ok = false
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now := s.now().UnixMilli()
		if s.d.pg() {
			rows, err := tx.QueryContext(ctx, "SELECT id FROM automation_jobs WHERE rule = $1 AND customer = $2 ORDER BY id FOR UPDATE", rule, customer)
			if err != nil {
				return err
			}
			rows.Close()
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM automation_jobs WHERE rule = $1 AND customer = $2 AND id <> $3 AND
	((state = $4 AND done_ms >= $5) OR (state = $6 AND cap_ms > 0 AND lease_until > $7))`,
			rule, customer, id, JobDone, t.UnixMilli(), JobScheduled, now).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return nil
		}
		res, err := tx.ExecContext(ctx, "UPDATE automation_jobs SET cap_ms = $1 WHERE id = $2 AND lease_owner = $3 AND state = $4", now, id, owner, JobScheduled)
		if err != nil {
			return err
		}
		if m, err := res.RowsAffected(); err != nil || m == 0 {
			return errors.Join(err, fmt.Errorf("%w: %s", ErrLeaseLost, id))
		}
		ok = true
		return tx.Commit()
	})
	if err != nil {
		return false, fmt.Errorf("store: reserve cap: %w", err)
	}
	return ok, nil
}

// JobRecord is a job as HQ sees it: a rule's run and its delivery.
type JobRecord struct {
	ID        string          `json:"id"`
	Rule      string          `json:"rule"`
	Trigger   string          `json:"trigger"`
	Customer  string          `json:"customer,omitempty"`
	State     string          `json:"state"`
	Attempts  int             `json:"attempts"`
	Reason    string          `json:"reason,omitempty"`
	Due       time.Time       `json:"due"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	LatencyMS int64           `json:"latency_ms,omitempty"`
	Event     json.RawMessage `json:"event,omitempty"`
}

// JobQuery filters Jobs.
type JobQuery struct {
	State, Rule string
	Limit       int
}

// Jobs lists jobs, the most recently changed first.
func (s *Store) Jobs(ctx context.Context, q JobQuery) ([]JobRecord, error) {
	where, params := []string{"1 = 1"}, []any{}
	if q.State != "" {
		params = append(params, q.State)
		where = append(where, "state = $"+strconv.Itoa(len(params)))
	}
	if q.Rule != "" {
		params = append(params, q.Rule)
		where = append(where, "rule = $"+strconv.Itoa(len(params)))
	}
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, rule, trigger_name, customer, state, attempts, reason, due_ms, created_ms, updated_ms, latency_ms, event
FROM automation_jobs WHERE `+strings.Join(where, " AND ")+` ORDER BY updated_ms DESC, id LIMIT `+strconv.Itoa(limit), params...)
	if err != nil {
		return nil, fmt.Errorf("store: jobs: %w", err)
	}
	defer rows.Close()
	var out []JobRecord
	for rows.Next() {
		var j JobRecord
		var due, created, updated int64
		var ev string
		if err := rows.Scan(&j.ID, &j.Rule, &j.Trigger, &j.Customer, &j.State, &j.Attempts, &j.Reason, &due, &created, &updated, &j.LatencyMS, &ev); err != nil {
			return nil, err
		}
		j.Due, j.Created, j.Updated, j.Event = msTime(due), msTime(created), msTime(updated), json.RawMessage(ev)
		out = append(out, j)
	}
	return out, rows.Err()
}

// RuleStats is how a rule's jobs stand.
type RuleStats struct {
	Rule      string `json:"rule"`
	Scheduled int    `json:"scheduled"`
	Done      int    `json:"done"`
	Skipped   int    `json:"skipped"`
	Dead      int    `json:"dead"`
}

// JobStats counts every rule's jobs by state.
func (s *Store) JobStats(ctx context.Context) ([]RuleStats, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT rule, state, count(*) FROM automation_jobs GROUP BY rule, state ORDER BY rule")
	if err != nil {
		return nil, fmt.Errorf("store: job stats: %w", err)
	}
	defer rows.Close()
	var out []RuleStats
	for rows.Next() {
		var rule, state string
		var n int
		if err := rows.Scan(&rule, &state, &n); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Rule != rule {
			out = append(out, RuleStats{Rule: rule})
		}
		r := &out[len(out)-1]
		switch state {
		case JobScheduled:
			r.Scheduled += n
		case JobDone:
			r.Done += n
		case JobSkipped:
			r.Skipped += n
		case JobDead:
			r.Dead += n
		}
	}
	return out, rows.Err()
}
