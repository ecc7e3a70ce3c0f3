package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

type surveyScores struct {
	Results []struct {
		Responses int     `json:"responses"`
		Partial   int     `json:"partial"`
		Score     float64 `json:"score"`
		Low       float64 `json:"low"`
		High      float64 `json:"high"`
	} `json:"results"`
}

func responses(t testing.TB, hubURL string) int {
	var s surveyScores
	if getJSON(t, hubURL+"/v1/surveys/post-purchase/scores", &s) != http.StatusOK || len(s.Results) != 1 {
		return -1
	}
	return s.Results[0].Responses
}

// Ensure that survey answers given at a kiosk while its store is offline
// (a partial answer, the complete one, and the complete one sent twice)
// count once when it reconnects; that a receipt's QR token opens the phone
// page, whose answer counts too; that comments are redacted for everyone
// but moderators; and that the /insights page charts it all in a real
// browser.
func TestSurveysOfflineAndPages(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	hubCall(t, http.MethodPut, h.URL+"/v1/surveys/post-purchase",
		`{"kind":"nps","question":"How likely are you to recommend us to a friend?","comment_prompt":"What made the difference?"}`, http.StatusOK)
	hubCall(t, http.MethodPut, h.URL+"/v1/surveys/post-purchase", `{"kind":"csat","question":"x"}`, http.StatusConflict)
	hubCall(t, http.MethodPut, h.URL+"/v1/surveys/post-purchase", `{"kind":"nps"}`, http.StatusBadRequest)

	a := startAgent(t, "S1", "kiosk-1", ns.URL())
	ns.Stop()
	testkit.Eventually(t, 10*time.Second, func() bool { return !status(t, a).Connected }, "the kiosk sees the outage")
	const token = "rcpt_9f2c4e7a1b3d5f6e8a0c2b4d"
	mustPost(t, a.URL, `{"kind":"survey","data":{"survey":"post-purchase","receipt":"R-1","channel":"kiosk","score":4}}`)
	complete := `{"kind":"survey","data":{"survey":"post-purchase","receipt":"R-1","channel":"kiosk","score":9,"complete":true,"comment":"Lovely staff. Mail me at anna@example.com"}}`
	mustPost(t, a.URL, complete)
	mustPost(t, a.URL, complete) // the kiosk's retry after a lost answer
	mustPost(t, a.URL, `{"kind":"survey","data":{"survey":"post-purchase","receipt":"R-2","channel":"receipt_qr","token":"`+token+`"}}`)
	if code, _, _ := post(a.URL, `{"kind":"survey","data":{"survey":"post-purchase","receipt":"R-3","score":11}}`); code != http.StatusBadRequest {
		t.Fatalf("score 11 at the kiosk: %d", code)
	}
	if n := responses(t, h.URL); n > 0 {
		t.Fatalf("answers counted while offline: %d", n)
	}
	ns.Restart()
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return responses(t, h.URL) == 1 }, "one answer for receipt R-1")
	var s surveyScores
	getJSON(t, h.URL+"/v1/surveys/post-purchase/scores", &s)
	if r := s.Results[0]; r.Score != 100 || r.Partial != 0 || !(r.Low < r.Score && r.High <= 100 && r.Low >= -100) {
		t.Fatalf("scores %+v", r)
	}

	var cs struct {
		Comments []struct {
			Comment  string `json:"comment"`
			Redacted bool   `json:"redacted"`
		} `json:"comments"`
	}
	getJSON(t, h.URL+"/v1/surveys/post-purchase/comments", &cs)
	if len(cs.Comments) != 1 || cs.Comments[0].Comment != "Lovely staff. Mail me at [email]" || !cs.Comments[0].Redacted {
		t.Fatalf("comments %+v", cs)
	}
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"ann","role":"analyst","password":"analyse the figures"}`, http.StatusCreated)
	annTok := createToken(t, h.URL, "ann", "analyse the figures")
	if code, _ := authed(t, annTok, http.MethodGet, h.URL+"/v1/surveys/post-purchase/comments?raw=1", ""); code != http.StatusForbidden {
		t.Fatalf("analyst reading raw comments: %d", code)
	}
	if code, body := authed(t, hubToken, http.MethodGet, h.URL+"/v1/surveys/post-purchase/comments?raw=1", ""); code != http.StatusOK || !strings.Contains(body, "anna@example.com") {
		t.Fatalf("admin reading raw comments: %d %s", code, body)
	}

	// The shopper scans the QR on receipt R-2 with a phone.
	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/s/"+token), chromedp.WaitVisible("#question"),
		chromedp.Click(`input[name=score][value="6"]`), chromedp.SendKeys("#comment", "Queue too long, call me on 06 12 34 56 78"),
		chromedp.Click("#send"), chromedp.WaitVisible("#flash")); err != nil {
		t.Fatalf("phone page: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return responses(t, h.URL) == 2 }, "the phone's answer counted")
	if code, _ := authed(t, "", http.MethodGet, h.URL+"/s/rcpt_not_a_token_of_any_receipt", ""); code != http.StatusNotFound {
		t.Fatalf("unknown token: %d", code)
	}

	// A rule, so the automation part of the page has something to show.
	hubCall(t, http.MethodPut, h.URL+"/v1/automation/rules/help",
		`{"name":"Fitting room help","enabled":true,"trigger":"fitting_room_unanswered","action":{"kind":"nats","subject":"staff.help"}}`, http.StatusOK)
	code, body := authed(t, annTok, http.MethodGet, h.URL+"/v1/automation/rules", "")
	var rules struct {
		Rules []json.RawMessage `json:"rules"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &rules) != nil || len(rules.Rules) != 1 {
		t.Fatalf("rules: %d %s", code, body)
	}

	// The analyst's page.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/insights"), chromedp.WaitVisible("#password"),
		chromedp.SendKeys("#user", "ann"), chromedp.SendKeys("#password", "analyse the figures"), chromedp.Click("#login"),
		chromedp.WaitVisible("#survey-post-purchase")); err != nil {
		t.Fatalf("insights page: %v", err)
	}
	points, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#trend-post-purchase circle.pt').length`))
	if err != nil || points < 1 {
		t.Fatalf("trend chart points %d, %v", points, err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML("body"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Mail me at [email]", "call me on [phone]", `id="jobs"`, "No customer analytics yet"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, never := range []string{"anna@example.com", "06 12 34 56 78"} {
		if strings.Contains(html, never) {
			t.Errorf("page shows %q", never)
		}
	}
	score, _ := chromedp.Run(ctx, chromedp.Text("#survey-post-purchase .score"))
	if want := fmt.Sprint(0); score != want { // one promoter, one detractor
		t.Errorf("score %q, want %q", score, want)
	}
}
