package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// Ensure that HQ's fitting-room survey reaches a store's mirror through
// the down-sync, that a shopper answers it there (score, then comment)
// while the store has lost NATS, and that once it is back the answer
// arrives at the hub and counts once: the partial and the complete answer
// are one respondent's, resent events are duplicates.
func TestKioskSurveyOffline(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	hubCall(t, http.MethodPut, h.URL+"/v1/surveys/fitting-csat",
		`{"kind":"csat","question":"How was your fitting room visit?","offer":"fitting_room"}`, http.StatusOK)
	a := startAgent(t, "S1", "mirror-1", ns.URL())

	jar, _ := cookiejar.New(nil)
	shopper := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodGet {
			resp, err = shopper.Get(a.URL + path)
		} else {
			resp, err = shopper.PostForm(a.URL+path, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var survey string
	testkit.Eventually(t, 20*time.Second, func() bool {
		code, body := page(http.MethodGet, "/kiosk/survey?for=visit&zone=room-1", nil)
		survey = body
		return code == http.StatusOK
	}, "the survey's definition at the store")

	ns.Stop()
	testkit.Eventually(t, 10*time.Second, func() bool { return !status(t, a).Connected }, "the store sees the outage")
	m := csrfRE.FindStringSubmatch(survey)
	if m == nil || !strings.Contains(survey, "How was your fitting room visit?") {
		t.Fatalf("survey page: %.400s", survey)
	}
	form := url.Values{"csrf": {m[1]}, "survey": {"fitting-csat"}, "for": {"visit"}, "zone": {"room-1"}, "step": {"score"}, "score": {"2"}}
	if code, body := page(http.MethodPost, "/kiosk/survey", form); code != http.StatusOK || !strings.Contains(body, `id="survey-comment"`) {
		t.Fatalf("score: %d %.300s", code, body)
	}
	form.Set("step", "send")
	form.Set("score", "5")
	form.Set("comment", "Lovely mirror")
	if code, body := page(http.MethodPost, "/kiosk/survey", form); code != http.StatusSeeOther {
		t.Fatalf("send: %d %.300s", code, body)
	}
	var s surveyScores
	if getJSON(t, h.URL+"/v1/surveys/fitting-csat/scores", &s); len(s.Results) != 0 {
		t.Fatalf("counted while offline: %+v", s)
	}

	ns.Restart()
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 15*time.Second, func() bool {
		s = surveyScores{}
		return getJSON(t, h.URL+"/v1/surveys/fitting-csat/scores", &s) == http.StatusOK && len(s.Results) == 1 && s.Results[0].Responses == 1
	}, "the mirror's answer at the hub")
	if r := s.Results[0]; r.Score != 100 || r.Partial != 0 {
		t.Fatalf("scores %+v", r)
	}
}
