package cx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/egress"
	"github.com/omnisync/omnisync/cloud/internal/insights"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

const adminToken = "omni_cx-test-admin-token-0000000"

// emptyFeed is a PurchaseFeed with no purchases yet.
type emptyFeed struct{}

func (emptyFeed) PurchasesAfter(context.Context, int64, int) ([]insights.Purchase, error) {
	return nil, nil
}

type fixture struct {
	st         *store.Store
	web        http.Handler
	moderator  string
	analyst    string
	withoutAny string
}

func newFixture(t *testing.T, svc *insights.Service) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pii.New(pii.Generate())
	if err != nil {
		t.Fatal(err)
	}
	st.SetCustomerKeys(keys)
	t.Cleanup(func() { st.Close() })
	const public = "http://127.0.0.1:8080"
	as := auth.New(auth.Options{Store: st, PublicURL: public})
	if err := as.Bootstrap(ctx, adminToken, io.Discard); err != nil {
		t.Fatal(err)
	}
	rt := auth.NewRouter(as)
	New(Options{Store: st, Insights: svc, Webhooks: egress.Policy{Hosts: []string{"crm.example", "169.254.169.254", "inside.example"},
		Resolver: egress.Names{"crm.example": {"93.184.215.14"}, "inside.example": {"192.168.1.20"}}}}).Register(rt)
	web, err := auth.Protect(rt, public, false)
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.NewPrincipal(1, auth.FirstAdmin, auth.Admin, nil, nil)
	f := &fixture{st: st, web: web}
	for _, u := range []struct {
		name, role string
		dst        *string
	}{{"mo", "moderator", &f.moderator}, {"ann", "analyst", &f.analyst}, {"shop", "integration", &f.withoutAny}} {
		if _, err := as.CreateUser(ctx, auth.NewUser{Name: u.name, Role: u.role}); err != nil {
			t.Fatal(err)
		}
		scopes := ""
		if u.role == "integration" {
			scopes = "carts:read"
		}
		_, tok, err := as.CreateToken(ctx, admin, auth.NewTokenRequest{Name: "t", User: u.name, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		*u.dst = tok
	}
	return f
}

func (f *fixture) call(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	f.web.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func surveyEvent(seq uint64, wall int64, body string) store.Item {
	env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.UnixMilli(wall)),
		Origin: events.Origin{Store: "S1", Device: "kiosk-1", Epoch: 7, Seq: seq}, HLC: hlc.Timestamp{Wall: wall},
		Kind: events.KindSurvey, Data: json.RawMessage(body)}
	raw, _ := json.Marshal(env)
	return store.Item{Env: env, Raw: raw}
}

// Ensure that surveys are defined, scored by group and commented through
// the API with bad input refused by field, and raw comments shown to
// moderators only.
func TestSurveysAPI(t *testing.T) {
	f := newFixture(t, nil)
	if code, body := f.call(t, adminToken, "PUT", "/v1/surveys/nps", `{"kind":"nps","question":"Recommend us?","colour":"red"}`); code != 400 {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	if code, body := f.call(t, f.analyst, "PUT", "/v1/surveys/nps", `{"kind":"nps","question":"Recommend us?"}`); code != 403 {
		t.Fatalf("analyst defining: %d %s", code, body)
	}
	if code, body := f.call(t, adminToken, "PUT", "/v1/surveys/nps", `{"kind":"nps","question":"Recommend us?"}`); code != 200 {
		t.Fatalf("define: %d %s", code, body)
	}
	wall := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli()
	var items []store.Item
	for i, sc := range []int{10, 9, 3, 8} {
		items = append(items, surveyEvent(uint64(i+1), wall+int64(i)*7*24*3600*1000,
			fmt.Sprintf(`{"survey":"nps","receipt":"R-%d","score":%d,"complete":true,"comment":"call +33 6 12 34 56 78"}`, i, sc)))
	}
	if res, err := f.st.ApplyBatch(context.Background(), items); err != nil || res.Applied != 4 {
		t.Fatalf("%+v %v", res, err)
	}
	code, body := f.call(t, f.analyst, "GET", "/v1/surveys/nps/scores?by=store,week", "")
	var sc struct {
		Results []struct {
			Store     string `json:"store"`
			Week      string `json:"week"`
			Responses int    `json:"responses"`
		} `json:"results"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &sc) != nil || len(sc.Results) != 4 || sc.Results[0].Store != "S1" || sc.Results[0].Week != "2026-W10" {
		t.Fatalf("scores: %d %s", code, body)
	}
	for q, field := range map[string]string{"by=colour": "by", "level=2": "level", "since=yesterday": "since"} {
		if code, body := f.call(t, f.analyst, "GET", "/v1/surveys/nps/scores?"+q, ""); code != 400 || !strings.Contains(body, `"field": "`+field+`"`) {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	if code, _ := f.call(t, f.analyst, "GET", "/v1/surveys/none/scores", ""); code != 404 {
		t.Errorf("unknown survey: %d", code)
	}
	if code, body := f.call(t, f.analyst, "GET", "/v1/surveys/nps/comments", ""); code != 200 || strings.Contains(body, "12 34") || !strings.Contains(body, "[phone]") {
		t.Errorf("comments: %d %s", code, body)
	}
	if code, _ := f.call(t, f.analyst, "GET", "/v1/surveys/nps/comments?raw=1", ""); code != 403 {
		t.Errorf("analyst raw: %d", code)
	}
	if code, body := f.call(t, f.moderator, "GET", "/v1/surveys/nps/comments?raw=1", ""); code != 200 || !strings.Contains(body, "12 34") {
		t.Errorf("moderator raw: %d %s", code, body)
	}
}

// Ensure that rules are stored and listed without their secrets, refused
// with a reason when invalid, deleted, and that jobs are filtered by state.
func TestAutomationAPI(t *testing.T) {
	f := newFixture(t, nil)
	rule := `{"name":"Carts","enabled":true,"trigger":"cart_abandoned","purpose":"marketing_email","channel":"email","delay_seconds":3600,
"conditions":[{"field":"cart.value","op":"gte","value":"5000"}],"cap":{"max":1,"per_seconds":604800},
"action":{"kind":"webhook","url":"https://crm.example/hooks/cart","secret":"whsec_0123456789abcdef"}}`
	if code, body := f.call(t, f.analyst, "PUT", "/v1/automation/rules/carts", rule); code != 403 {
		t.Fatalf("analyst writing: %d %s", code, body)
	}
	if code, body := f.call(t, adminToken, "PUT", "/v1/automation/rules/carts", strings.Replace(rule, `"marketing_email"`, `"spam"`, 1)); code != 400 || !strings.Contains(body, "purpose") {
		t.Fatalf("bad purpose: %d %s", code, body)
	}
	if code, body := f.call(t, adminToken, "PUT", "/v1/automation/rules/carts", rule); code != 200 || strings.Contains(body, "whsec_") {
		t.Fatalf("put: %d %s", code, body)
	}
	for _, u := range []string{"https://evil.example/x", "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/v1/x", "https://inside.example/h"} {
		bad := strings.Replace(rule, "https://crm.example/hooks/cart", u, 1)
		if code, body := f.call(t, adminToken, "PUT", "/v1/automation/rules/evil", bad); code != 400 || !strings.Contains(body, "action.url") {
			t.Errorf("webhook to %s: %d %s", u, code, body)
		}
	}
	// No secret given: the hub makes one and shows it this once.
	noSecret := strings.Replace(rule, `,"secret":"whsec_0123456789abcdef"`, "", 1)
	code, body := f.call(t, adminToken, "PUT", "/v1/automation/rules/made", noSecret)
	var made struct {
		Secret string `json:"secret"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &made) != nil || !strings.HasPrefix(made.Secret, "whsec_") {
		t.Fatalf("put without a secret: %d %s", code, body)
	}
	if code, body := f.call(t, adminToken, "PUT", "/v1/automation/rules/made", noSecret); code != 200 || strings.Contains(body, "whsec_") {
		t.Fatalf("an edit showed the secret again: %d %s", code, body)
	}
	if code, _ := f.call(t, adminToken, "DELETE", "/v1/automation/rules/made", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	code, body = f.call(t, f.analyst, "GET", "/v1/automation/rules", "")
	if code != 200 || strings.Contains(body, "whsec_") || !strings.Contains(body, `"delay_seconds": 3600`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, _ := f.call(t, f.analyst, "GET", "/v1/automation/jobs?state=lost", ""); code != 400 {
		t.Errorf("bad state: %d", code)
	}
	if code, body := f.call(t, f.analyst, "GET", "/v1/automation/jobs?state=dead", ""); code != 200 || !strings.Contains(body, `"jobs": []`) {
		t.Errorf("dead letters: %d %s", code, body)
	}
	if code, _ := f.call(t, adminToken, "DELETE", "/v1/automation/rules/carts", ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := f.call(t, adminToken, "DELETE", "/v1/automation/rules/carts", ""); code != 404 {
		t.Errorf("delete again: %d", code)
	}
}

// Ensure that the analytics answer 503 while no service runs, and from the
// service once it does.
func TestInsightsAPI(t *testing.T) {
	f := newFixture(t, nil)
	if code, _ := f.call(t, f.analyst, "GET", "/v1/insights/segments", ""); code != 503 {
		t.Errorf("no service: %d", code)
	}
	svc, err := insights.New(insights.Config{Feed: emptyFeed{}})
	if err != nil {
		t.Fatal(err)
	}
	f = newFixture(t, svc)
	if code, body := f.call(t, f.analyst, "GET", "/v1/insights/segments", ""); code != 200 || !strings.Contains(body, `"segments"`) {
		t.Errorf("segments: %d %s", code, body)
	}
	if code, _ := f.call(t, f.analyst, "GET", "/v1/insights/clv", ""); code != 503 {
		t.Errorf("clv before a fit: %d", code)
	}
	if code, _ := f.call(t, f.analyst, "GET", "/v1/insights/customers/C1", ""); code != 403 {
		t.Errorf("analyst reading a customer: %d", code)
	}
	if code, _ := f.call(t, f.withoutAny, "GET", "/v1/insights/aov", ""); code != 403 {
		t.Errorf("no scope: %d", code)
	}
}
