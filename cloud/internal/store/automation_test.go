package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/consent"
)

// Ensure that a job is scheduled once per (rule, event), claimed by one
// owner at a time, claimed again once its lease ends, and that only the
// lease holder records its outcome.
func TestAutomationJobs_Lease(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		r := automation.Rule{ID: "carts", Enabled: true, Trigger: automation.CartAbandoned, Purpose: consent.MarketingEmail,
			Action: automation.Action{Kind: automation.ActionWebhook, URL: "https://crm.example/h", Secret: "0123456789abcdef"}}
		if err := s.PutRule(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRule(ctx, automation.Rule{ID: "bad"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad rule: %v", err)
		}
		rules, err := s.Rules(ctx)
		if err != nil || len(rules) != 1 || rules[0].Action.Secret != "0123456789abcdef" {
			t.Fatalf("%+v %v", rules, err)
		}
		t0 := time.Now().Add(-time.Minute)
		var jobs []automation.Job
		for i := range 5 {
			ev := automation.Event{ID: fmt.Sprint("e", i), Trigger: automation.CartAbandoned, At: t0, Customer: fmt.Sprint("C", i%2)}
			jobs = append(jobs, automation.Job{ID: automation.JobID("carts", ev.ID), Rule: "carts", Trigger: ev.Trigger, Customer: ev.Customer, Due: t0, Event: ev})
		}
		if n, err := s.ScheduleJobs(ctx, jobs); err != nil || n != 5 {
			t.Fatalf("schedule: %d %v", n, err)
		}
		if n, _ := s.ScheduleJobs(ctx, jobs[:3]); n != 0 {
			t.Fatalf("scheduled again: %d", n)
		}
		now := time.Now()
		a, err := s.ClaimJobs(ctx, "replica-a", now, 30*time.Second, 3)
		if err != nil || len(a) != 3 || a[0].Attempt != 1 {
			t.Fatalf("claim a: %+v %v", a, err)
		}
		b, _ := s.ClaimJobs(ctx, "replica-b", now, 30*time.Second, 10)
		if len(b) != 2 {
			t.Fatalf("claim b got %d", len(b))
		}
		for _, j := range b {
			for _, k := range a {
				if j.ID == k.ID {
					t.Fatalf("%s claimed twice", j.ID)
				}
			}
		}
		if c, _ := s.ClaimJobs(ctx, "replica-c", now, 30*time.Second, 10); len(c) != 0 {
			t.Fatalf("claimed leased jobs: %+v", c)
		}
		if err := s.FinishJob(ctx, a[0].ID, "replica-a", JobOutcome{State: JobDone, Latency: 12 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, a[1].ID, "replica-a", JobOutcome{State: JobScheduled, RetryAt: now.Add(-time.Second), Reason: "503"}); err != nil {
			t.Fatal(err)
		}
		// replica-a dies holding a[2]: after the lease, replica-c gets it
		// (and a[1], due again), with the same id.
		later := now.Add(31 * time.Second)
		c, _ := s.ClaimJobs(ctx, "replica-c", later, 30*time.Second, 10)
		if len(c) != 4 { // a[1], a[2], and b's two whose lease ran out too
			t.Fatalf("reclaimed %d: %+v", len(c), c)
		}
		if err := s.FinishJob(ctx, a[2].ID, "replica-a", JobOutcome{State: JobDone}); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("late finish: %v", err)
		}
		for _, j := range c {
			if j.ID == a[1].ID && j.Attempt != 2 {
				t.Errorf("attempt %d", j.Attempt)
			}
			st := JobDead
			if j.ID == a[2].ID {
				st = JobDone
			}
			if err := s.FinishJob(ctx, j.ID, "replica-c", JobOutcome{State: st, Reason: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.SentSince(ctx, "carts", a[0].Customer, t0)
		if err != nil || n < 1 {
			t.Fatalf("sent since %d %v", n, err)
		}
		dead, _ := s.Jobs(ctx, JobQuery{State: JobDead})
		if len(dead) != 3 || string(dead[0].Event) == "" {
			t.Fatalf("dead %+v", dead)
		}
		stats, _ := s.JobStats(ctx)
		if len(stats) != 1 || stats[0].Done != 2 || stats[0].Dead != 3 {
			t.Fatalf("stats %+v", stats)
		}
		if err := s.DeleteRule(ctx, "carts"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRule(ctx, "carts"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	})
}

// Ensure that a webhook's signing secret is sealed at rest (neither the
// rule's JSON nor its sealed column holds it), that a rule given none gets
// a random one shown once and kept through later edits, that a rule an
// older hub stored with its secret in the JSON is sealed at start, and
// that nothing is stored without the customer keys.
func TestAutomationRules_SecretSealed(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := automation.Rule{ID: "carts", Enabled: true, Trigger: automation.CartAbandoned, Purpose: consent.MarketingEmail,
			Action: automation.Action{Kind: automation.ActionWebhook, URL: "https://crm.example/h"}}
		if _, err := s.SaveRule(ctx, r); !errors.Is(err, ErrNoCustomerKeys) {
			t.Fatalf("without keys: %v", err)
		}
		withKeys(s)
		made, err := s.SaveRule(ctx, r)
		if err != nil || len(made) < 40 {
			t.Fatalf("made %q: %v", made, err)
		}
		r.Name = "Carts, renamed"
		if again, err := s.SaveRule(ctx, r); err != nil || again != "" {
			t.Fatalf("an edit showed a secret %q: %v", again, err)
		}
		given := r
		given.ID, given.Action.Secret = "given", "whsec_given_0123456789"
		if shown, err := s.SaveRule(ctx, given); err != nil || shown != "" {
			t.Fatalf("a given secret shown back %q: %v", shown, err)
		}
		rules, err := s.Rules(ctx)
		if err != nil || len(rules) != 2 || rules[0].Action.Secret != made || rules[1].Action.Secret != "whsec_given_0123456789" || rules[0].Name != "Carts, renamed" {
			t.Fatalf("rules %+v %v", rules, err)
		}
		raw, err := s.r.QueryContext(ctx, "SELECT body, secret_enc FROM automation_rules")
		if err != nil {
			t.Fatal(err)
		}
		for raw.Next() {
			var body string
			var enc []byte
			if err := raw.Scan(&body, &enc); err != nil {
				t.Fatal(err)
			}
			for _, b := range []string{body, string(enc)} {
				if strings.Contains(b, "whsec_") || strings.Contains(b, made[6:20]) {
					t.Errorf("secret at rest: %q", b)
				}
			}
		}
		raw.Close()

		if _, err := s.w.ExecContext(ctx, `INSERT INTO automation_rules (id, body, updated_ms) VALUES ('old', $1, 1)`,
			`{"id":"old","enabled":true,"trigger":"cart_abandoned","purpose":"marketing_email","cap":{"max":0,"per_seconds":0},"action":{"kind":"webhook","url":"https://crm.example/o","secret":"whsec_old_0123456789"}}`); err != nil {
			t.Fatal(err)
		}
		if n, err := s.SealInClear(ctx); err != nil || n != 1 {
			t.Fatalf("sealed %d: %v", n, err)
		}
		var body string
		if err := s.r.QueryRowContext(ctx, "SELECT body FROM automation_rules WHERE id = 'old'").Scan(&body); err != nil || strings.Contains(body, "whsec_") {
			t.Fatalf("old rule's JSON %q %v", body, err)
		}
		rules, _ = s.Rules(ctx)
		if len(rules) != 3 || rules[2].Action.Secret != "whsec_old_0123456789" {
			t.Fatalf("after sealing %+v", rules)
		}
	})
}
