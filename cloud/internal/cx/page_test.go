package cx

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/insights"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/testkit"
)

// feed is an in-memory PurchaseFeed.
type feed struct {
	mu sync.Mutex
	ps []insights.Purchase
}

func (f *feed) add(p insights.Purchase) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.Cursor = int64(len(f.ps) + 1)
	f.ps = append(f.ps, p)
}

func (f *feed) PurchasesAfter(_ context.Context, cursor int64, limit int) ([]insights.Purchase, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if int(cursor) >= len(f.ps) {
		return nil, nil
	}
	return append([]insights.Purchase(nil), f.ps[cursor:min(int(cursor)+limit, len(f.ps))]...), nil
}

// Ensure that the /insights page draws the segments and the CLV
// distribution as charts in a real browser, for a logged-in analyst.
func TestInsightsPage_InChromium(t *testing.T) {
	testkit.Chromium(t)
	ctx := context.Background()
	f := &feed{}
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	for i := range 600 {
		c := fmt.Sprint("C", i)
		at := now.Add(-time.Duration(rng.IntN(300*24)) * time.Hour)
		rate, churn, spend := rng.ExpFloat64()*0.4, rng.Float64()*rng.Float64(), int64(1000+rng.IntN(9000))
		for at.Before(now) {
			f.add(insights.Purchase{Customer: c, At: at, Amount: spend + int64(rng.IntN(500)), Store: "S1", Channel: "store"})
			if rng.Float64() < churn {
				break
			}
			at = at.Add(time.Duration(rng.ExpFloat64() / max(rate, 0.02) * float64(7*24*time.Hour)))
		}
	}
	svc, err := insights.New(insights.Config{Feed: f, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go svc.Run(ctx)
	defer svc.Close()
	testkit.Eventually(t, 30*time.Second, func() bool { _, err := svc.CLV(); return err == nil }, "a CLV fit")

	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pii.New(pii.Generate())
	if err != nil {
		t.Fatal(err)
	}
	st.SetCustomerKeys(keys)
	defer st.Close()
	// Two rules' runs for the automation's chart and table.
	t0 := now.Add(-time.Minute)
	var jobs []automation.Job
	for i, rule := range []string{"carts", "carts", "carts", "survey"} {
		if i == 0 || i == 3 {
			trig := automation.CartAbandoned
			if rule == "survey" {
				trig = automation.PostPurchase
			}
			if err := st.PutRule(ctx, automation.Rule{ID: rule, Enabled: true, Trigger: trig, Purpose: consent.MarketingEmail,
				Action: automation.Action{Kind: automation.ActionNATS, Subject: "crm.automation." + rule}}); err != nil {
				t.Fatal(err)
			}
		}
		ev := automation.Event{ID: fmt.Sprint("e", i), Trigger: automation.CartAbandoned, At: t0, Customer: fmt.Sprint("C", i)}
		jobs = append(jobs, automation.Job{ID: automation.JobID(rule, ev.ID), Rule: rule, Trigger: ev.Trigger, Customer: ev.Customer, Due: t0, Event: ev})
	}
	if n, err := st.ScheduleJobs(ctx, jobs); err != nil || n != len(jobs) {
		t.Fatalf("schedule: %d %v", n, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	as := auth.New(auth.Options{Store: st, PublicURL: public})
	if err := as.Bootstrap(ctx, adminToken, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := as.CreateUser(ctx, auth.NewUser{Name: "ann", Role: "analyst", Password: "analyse the figures"}); err != nil {
		t.Fatal(err)
	}
	rt := auth.NewRouter(as)
	as.Register(rt)
	New(Options{Store: st, Insights: svc}).Register(rt)
	web, err := auth.Protect(rt, public, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: web}
	go srv.Serve(ln)
	defer srv.Close()

	b := testkit.Browser(t)
	if err := chromedp.Do(b, chromedp.Navigate(public+"/insights"), chromedp.WaitVisible("#password"),
		chromedp.SendKeys("#user", "ann"), chromedp.SendKeys("#password", "analyse the figures"), chromedp.Click("#login"),
		chromedp.WaitVisible("#clv-note")); err != nil {
		t.Fatalf("page: %v", err)
	}
	bars, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#segments rect.bar').length`))
	if err != nil || bars < 3 {
		t.Fatalf("segment bars %d, %v", bars, err)
	}
	cols, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#clv rect.col').length`))
	if err != nil || cols != 20 {
		t.Fatalf("CLV columns %d, %v", cols, err)
	}
	width, err := chromedp.Run(b, chromedp.Evaluate[float64](`document.querySelector('#clv').getBoundingClientRect().width`))
	if err != nil || width < 600 {
		t.Fatalf("CLV chart width %v, %v", width, err)
	}
	note, _ := chromedp.Run(b, chromedp.Text("#clv-note"))
	if !strings.Contains(note, "BG/NBD r=") || !strings.Contains(note, "600 customers") {
		t.Errorf("note %q", note)
	}
	// The automation's runs: a bar per rule, and the latest jobs listed.
	ruleBars, err := chromedp.Run(b, chromedp.Evaluate[int](`new Set([...document.querySelectorAll('#rules rect.bar')].map(r => r.getAttribute('y'))).size`))
	if err != nil || ruleBars != 2 {
		t.Fatalf("rule-run bars for %d rules, %v", ruleBars, err)
	}
	rows, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#jobs tr').length`))
	if err != nil || rows != 1+len(jobs) {
		t.Fatalf("jobs table rows %d, %v", rows, err)
	}
	html, _ := chromedp.Run(b, chromedp.OuterHTML("body"))
	if !strings.Contains(html, "customers · as of") || strings.Contains(html, `id="jobs"`) == false {
		t.Errorf("page: segments header or automation table missing")
	}
}
