package automation

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/consent"
)

// facts is an in-memory Facts.
type facts struct {
	segments map[string]string
	profiles map[string]map[string]string
}

func (f facts) Segment(c string) string { return f.segments[c] }
func (f facts) Profile(c, a string) (string, bool) {
	v, ok := f.profiles[c][a]
	return v, ok
}

func webhookRule(id string, t Trigger, conds ...Condition) Rule {
	return Rule{ID: id, Enabled: true, Trigger: t, Conditions: conds, Purpose: consent.MarketingEmail, Channel: consent.ChannelEmail,
		Action: Action{Kind: ActionWebhook, URL: "https://crm.example/hook", Secret: "0123456789abcdef"}}
}

func TestRule_Validate(t *testing.T) {
	ok := webhookRule("r1", CartAbandoned)
	tests := []struct {
		name string
		edit func(*Rule)
		want string
	}{
		{"valid", func(*Rule) {}, ""},
		{"nats", func(r *Rule) { r.Action = Action{Kind: ActionNATS, Subject: "crm.cart.abandoned"} }, ""},
		{"staff message needs no purpose", func(r *Rule) { r.Trigger, r.Purpose = FittingRoomUnanswered, "" }, ""},
		{"bad id", func(r *Rule) { r.ID = "a b" }, "id must be"},
		{"unknown trigger", func(r *Rule) { r.Trigger = "birthday" }, "trigger"},
		{"customer message without purpose", func(r *Rule) { r.Purpose = "" }, "purpose is required"},
		{"unknown purpose", func(r *Rule) { r.Purpose = "spam" }, "purpose"},
		{"bad op", func(r *Rule) { r.Conditions = []Condition{{Field: "segment", Op: "like"}} }, "op"},
		{"gte needs a number", func(r *Rule) { r.Conditions = []Condition{{Field: "cart.value", Op: OpGte, Value: "lots"}} }, "needs a number"},
		{"in needs values", func(r *Rule) { r.Conditions = []Condition{{Field: "segment", Op: OpIn}} }, "in needs values"},
		{"negative delay", func(r *Rule) { r.DelaySeconds = -1 }, "delay"},
		{"cap without window", func(r *Rule) { r.Cap = Cap{Max: 1} }, "cap"},
		{"url with credentials", func(r *Rule) { r.Action.URL = "https://u:p@crm.example/" }, "url"},
		{"ftp url", func(r *Rule) { r.Action.URL = "ftp://crm.example/" }, "url"},
		{"short secret", func(r *Rule) { r.Action.Secret = "short" }, "secret"},
		{"wildcard subject", func(r *Rule) { r.Action = Action{Kind: ActionNATS, Subject: "crm.*"} }, "subject"},
		{"internal subject", func(r *Rule) { r.Action = Action{Kind: ActionNATS, Subject: "omni.ev.S1.x"} }, "subject"},
		{"unknown action", func(r *Rule) { r.Action.Kind = "email" }, "action.kind"},
	}
	for _, tt := range tests {
		r := ok
		tt.edit(&r)
		err := r.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if got := ok.Redacted().Action.Secret; got == ok.Action.Secret {
		t.Error("secret shown")
	}
}

func TestEngine_Plan(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := facts{segments: map[string]string{"C1": "champions", "C2": "at_risk"},
		profiles: map[string]map[string]string{"C1": {"country": "FR"}}}
	rules := []Rule{
		webhookRule("big-carts", CartAbandoned, Condition{Field: "cart.value", Op: OpGte, Value: "5000"}),
		webhookRule("champions-fr", CartAbandoned, Condition{Field: "segment", Op: OpEq, Value: "champions"},
			Condition{Field: "profile.country", Op: OpIn, Values: []string{"FR", "BE"}}),
		webhookRule("not-at-risk", CartAbandoned, Condition{Field: "segment", Op: OpNe, Value: "at_risk"}),
		webhookRule("disabled", CartAbandoned),
		webhookRule("survey", PostPurchase),
	}
	rules[0].DelaySeconds = 3600
	rules[3].Enabled = false
	e := NewEngine(rules)
	if e.Rules() != 4 {
		t.Fatalf("rules %d", e.Rules())
	}
	tests := []struct {
		ev   Event
		want []string
	}{
		{Event{ID: "e1", Trigger: CartAbandoned, At: at, Customer: "C1", Attrs: map[string]string{"cart.value": "7500"}},
			[]string{"big-carts:e1", "champions-fr:e1", "not-at-risk:e1"}},
		{Event{ID: "e2", Trigger: CartAbandoned, At: at, Customer: "C2", Attrs: map[string]string{"cart.value": "100"}}, nil},
		{Event{ID: "e3", Trigger: CartAbandoned, At: at, Customer: "C3"}, []string{"not-at-risk:e3"}},
		{Event{ID: "e4", Trigger: PostPurchase, At: at, Customer: "C3"}, []string{"survey:e4"}},
		{Event{ID: "e5", Trigger: AtRisk, At: at, Customer: "C3"}, nil},
	}
	for _, tt := range tests {
		jobs, err := e.Plan(tt.ev, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range jobs {
			got = append(got, j.ID)
			if j.Rule == "big-carts" && !j.Due.Equal(at.Add(time.Hour)) {
				t.Errorf("due %v", j.Due)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %v, want %v", tt.ev.ID, got, tt.want)
		}
	}
	if _, err := e.Plan(Event{ID: "x", Trigger: CartAbandoned, At: at}, f, nil); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("no customer: %v", err)
	}
	fr := NewEngine([]Rule{{ID: "help", Enabled: true, Trigger: FittingRoomUnanswered, Action: Action{Kind: ActionNATS, Subject: "staff.help"}}})
	jobs, _ := fr.Plan(Event{ID: "a1", Trigger: FittingRoomUnanswered, At: at, Store: "S1"}, nil, nil)
	if len(jobs) != 1 || !jobs[0].Due.Equal(at.Add(3*time.Minute)) {
		t.Errorf("fitting room %+v", jobs)
	}
	if id := JobID("r", strings.Repeat("x", 300)); len(id) > 120 || id != JobID("r", strings.Repeat("x", 300)) {
		t.Errorf("long id %q", id)
	}
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"r:e"}`)
	h := Sign("0123456789abcdef", now, body)
	if !strings.HasPrefix(h, "t=1700000000,v1=") {
		t.Fatal(h)
	}
	if !Verify("0123456789abcdef", h, body, now.Add(time.Minute), 5*time.Minute) {
		t.Error("valid signature refused")
	}
	for name, ok := range map[string]bool{
		"other body":   Verify("0123456789abcdef", h, []byte(`{"id":"x"}`), now, 5*time.Minute),
		"other secret": Verify("fedcba9876543210", h, body, now, 5*time.Minute),
		"stale":        Verify("0123456789abcdef", h, body, now.Add(time.Hour), 5*time.Minute),
		"garbage":      Verify("0123456789abcdef", "v1=zz", body, now, 5*time.Minute),
	} {
		if ok {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		step := min(5*time.Second<<(attempt-1), 10*time.Minute)
		for range 20 {
			d := RetryDelay(attempt, 5*time.Second, 10*time.Minute)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: %v not in [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
}

// BenchmarkPlan is rule evaluation: 20 rules on 5 triggers, conditions
// on the cart, the segment and the profile, one event per op.
//
//	go test -run '^$' -bench Plan ./cloud/internal/automation/
func BenchmarkPlan(b *testing.B) {
	var rules []Rule
	for i := range 20 {
		t := Triggers[i%len(Triggers)]
		if t == FittingRoomUnanswered {
			t = CartAbandoned
		}
		rules = append(rules, webhookRule(fmt.Sprintf("r%d", i), t,
			Condition{Field: "cart.value", Op: OpGte, Value: fmt.Sprint(i * 500)},
			Condition{Field: "segment", Op: OpIn, Values: []string{"champions", "loyal_customers", "at_risk"}},
			Condition{Field: "profile.country", Op: OpNe, Value: "XX"}))
	}
	e := NewEngine(rules)
	f := facts{segments: map[string]string{}, profiles: map[string]map[string]string{}}
	evs := make([]Event, 1024)
	segs := []string{"champions", "hibernating", "at_risk", "lost"}
	for i := range evs {
		c := fmt.Sprintf("C%d", i)
		f.segments[c] = segs[i%len(segs)]
		f.profiles[c] = map[string]string{"country": "FR"}
		evs[i] = Event{ID: fmt.Sprintf("e%d", i), Trigger: []Trigger{CartAbandoned, PostPurchase, AtRisk, BackInStock}[i%4],
			At: time.Unix(1_700_000_000, 0), Customer: c, Attrs: map[string]string{"cart.value": fmt.Sprint(i * 10)}}
	}
	var jobs []Job
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		jobs, _ = e.Plan(evs[i%len(evs)], f, jobs[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestStockWatch(t *testing.T) {
	w := NewStockWatch()
	steps := []struct {
		sku, loc string
		avail    int64
		want     bool
	}{
		{"A", "S1", 3, false},  // first seen in stock: nothing
		{"A", "S1", 0, false},  // sold out
		{"A", "S1", -1, false}, // oversold
		{"A", "S2", 5, false},  // another store: its own position
		{"A", "S1", 2, true},   // back
		{"A", "S1", 4, false},  // still in stock
		{"A", "S1", 0, false},
		{"A", "S1", 1, true}, // back again
	}
	for i, s := range steps {
		if got := w.Observe(s.sku, s.loc, s.avail); got != s.want {
			t.Errorf("step %d: %v", i, got)
		}
	}
	if w.OutOfStock() != 0 {
		t.Errorf("held %d", w.OutOfStock())
	}
}
