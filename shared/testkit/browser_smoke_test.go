package testkit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that Browser drives a real page: type, click, read the result.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`<html><body><input id=q><button id=b onclick="document.getElementById('o').textContent=document.getElementById('q').value">go</button><p id=o></p></body></html>`))
	}))
	defer srv.Close()
	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.SendKeys("#q", "hello"), chromedp.Click("#b")); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(ctx, chromedp.Text("#o"))
	if err != nil || out != "hello" {
		t.Fatalf("text = %q, %v", out, err)
	}
}
