package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that an agent with an API token refuses requests without it,
// cross-site posts and foreign Host names, serves a paired kiosk with its
// cookie, and that its own simulated POS gets through with the token.
func TestAgent_APIGuard(t *testing.T) {
	const token = "store-7-api-token-for-tests"
	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S7", "pos-1", "nats://127.0.0.1:1", t.TempDir(), "127.0.0.1:0"
	cfg.APIToken = token
	cfg.Simulate, cfg.SimulateRate = true, 20
	_, base := runAgent(t, cfg)
	sale := `{"kind":"sale","data":{"lines":[{"sku":"SKU-00001","qty":1}]}}`

	send := func(c *http.Client, method, path, body string, header map[string]string, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bearer := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	plain := http.DefaultClient
	cases := []struct {
		name, method, path string
		header             map[string]string
		host               string
		want               int
	}{
		{"no token", "POST", "/v1/events", nil, "", http.StatusUnauthorized},
		{"token", "POST", "/v1/events", bearer, "", http.StatusAccepted},
		{"healthz", "GET", "/healthz", nil, "", http.StatusOK},
		{"status without token", "GET", "/v1/status", nil, "", http.StatusUnauthorized},
		{"cross-site text/plain", "POST", "/v1/events", map[string]string{"Authorization": "Bearer " + token, "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"rebinding host", "POST", "/v1/events", bearer, "evil.example:7070", http.StatusForbidden},
		{"sweep without token", "POST", "/v1/devices/scanner-1/sweep", nil, "", http.StatusUnauthorized},
	}
	for _, c := range cases {
		if got, body := send(plain, c.method, c.path, sale, c.header, c.host); got != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, got, body, c.want)
		}
	}

	// A kiosk on another device pairs once, then uses its pages and posts
	// (same origin) with the cookie it was given.
	jar, _ := cookiejar.New(nil)
	kiosk := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	if got, body := send(kiosk, "GET", "/kiosk/?pair="+url.QueryEscape(token), "", nil, ""); got != http.StatusOK {
		t.Fatalf("pairing: %d %s", got, body)
	}
	if got, _ := send(kiosk, "GET", "/kiosk/", "", nil, ""); got != http.StatusOK {
		t.Fatalf("paired kiosk page: %d", got)
	}
	sameOrigin := map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
	if got, body := send(kiosk, "POST", "/kiosk/done", "", sameOrigin, ""); got == http.StatusUnauthorized || got == http.StatusForbidden {
		t.Fatalf("paired kiosk's own post: %d %s", got, body)
	}
	if got, _ := send(kiosk, "POST", "/v1/events", sale, map[string]string{"Content-Type": "application/json"}, ""); got != http.StatusUnauthorized {
		t.Fatalf("the kiosk cookie opened the POS API: %d", got)
	}
	// The customer card is the till's: the token opens it (offline and
	// nothing cached here: 503), the kiosk's cookie does not.
	card := `{"identifiers":{"loyalty":"LC-1"}}`
	if got, _ := send(plain, "POST", "/v1/customers/card", card, nil, ""); got != http.StatusUnauthorized {
		t.Fatalf("customer card without the token: %d", got)
	}
	if got, body := send(plain, "POST", "/v1/customers/card", card, bearer, ""); got != http.StatusServiceUnavailable {
		t.Fatalf("customer card offline: %d %s", got, body)
	}
	if got, _ := send(kiosk, "POST", "/v1/customers/card", card, map[string]string{"Content-Type": "application/json"}, ""); got != http.StatusUnauthorized {
		t.Fatalf("the kiosk cookie opened the customer card: %d", got)
	}

	// The simulated POS posts with the token.
	var st Status
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, body := send(plain, "GET", "/v1/status", "", bearer, "")
		return json.Unmarshal([]byte(body), &st) == nil && st.LastSeq > 2
	}, "the simulated POS's sales accepted: %+v", st)
	_, metrics := send(plain, "GET", "/metrics", "", bearer, "")
	for _, want := range []string{`omni_edge_api_refused_total{reason="token"}`, `omni_edge_api_refused_total{reason="origin"} 1`, `omni_edge_api_refused_total{reason="host"} 1`, "omni_edge_scan_stream_refused_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Ensure that, in a real browser, a page of another origin cannot sell
// through the agent on this machine: neither a text/plain form whose body
// is valid JSON nor a no-cors fetch, while the same body from a till is
// accepted.
func TestAgent_CrossSiteBrowser(t *testing.T) {
	ctx := testkit.Browser(t)
	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S7", "pos-1", "nats://127.0.0.1:1", t.TempDir(), "127.0.0.1:0"
	_, base := runAgent(t, cfg)
	// A form field named `{"kind":...,"x":"` with the value `"}` posts
	// `{"kind":...,"x":"="}` as text/plain: valid JSON for the POS API.
	const field = `{"kind":"sale","data":{"lines":[{"sku":"SKU-00001","qty":1}]},"x":"`
	page := `<!doctype html><html><body>
<form id="f" method="post" enctype="text/plain" action="` + base + `/v1/events"><input type="hidden" name='` + field + `' value='"}'></form>
<script>
fetch("` + base + `/v1/devices/scanner-1/sweep", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '{"action":"start"}'})
  .finally(() => fetch("` + base + `/v1/events", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '` + field + `="}'}))
  .finally(() => document.getElementById("f").submit());
</script></body></html>`
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	}))
	t.Cleanup(attacker.Close)

	if _, err := chromedp.Run(ctx, chromedp.Navigate(attacker.URL)); err != nil {
		t.Fatal(err)
	}
	refused := func() string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testkit.Eventually(t, 15*time.Second, func() bool {
		return strings.Contains(refused(), `omni_edge_api_refused_total{reason="origin"} 3`)
	}, "the form and both fetches refused")
	var st Status
	if get(t, base+"/v1/status", &st) != http.StatusOK || st.LastSeq != 0 {
		t.Fatalf("the other site's page sold: %+v", st)
	}
	// The same body from a till (no browser headers) is a sale.
	resp, err := http.Post(base+"/v1/events", "text/plain", strings.NewReader(field+`="}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the till's post: %d", resp.StatusCode)
	}
}
