package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the headless browser page tests use (Debian's
// chromium, or $OMNI_CHROMIUM). Without one the test is skipped, or fails
// when CI is set (.ci/run installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OMNI_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI (apt-get install chromium)")
	}
	t.Skip("chromium not installed; set CI=1 to make this a failure")
	return ""
}

// chromiumFlags keep a headless run self-contained: no sandbox (tests run as
// root here), no GPU, and none of the background connections a closed
// network refuses.
func chromiumFlags(t testing.TB) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}
}

// RenderDOM loads url in headless Chromium, lets its scripts run, and
// returns the resulting DOM as HTML.
func RenderDOM(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(chromiumFlags(t), "--virtual-time-budget=3000", "--dump-dom", url)
	out, err := exec.CommandContext(ctx, Chromium(t), args...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

// Screenshot saves a PNG of url as rendered by headless Chromium.
func Screenshot(t testing.TB, url, file string, width, height int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(chromiumFlags(t), "--hide-scrollbars",
		"--window-size="+itoa(width)+","+itoa(height), "--screenshot="+file, url)
	if out, err := exec.CommandContext(ctx, Chromium(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot %s: %v\n%s", url, err, out)
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}

// Browser starts headless Chromium driven over the DevTools protocol
// (chromedp) and returns a context for chromedp.Run: a page test can type,
// click, wait for elements and read the DOM as a shopper's actions change
// it. The browser is closed when the test ends.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path := Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1080, 1920),
	}
	// A page that never shows what a test waits for must fail that test,
	// not hang the package until go test's own timeout kills every test in
	// it with no word on which one waited.
	bctx, bcancel := context.WithTimeout(context.Background(), browserBudget(t))
	actx, acancel := chromedp.NewExecAllocator(bctx, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		bcancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); acancel(); bcancel() })
	return ctx
}

// browserBudget is how long one test may drive its browser: three minutes,
// or less when go test's -timeout ends sooner, so the test fails itself
// with a message first.
func browserBudget(t testing.TB) time.Duration {
	budget := 3 * time.Minute
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok {
			if left := time.Until(end) - 30*time.Second; left < budget {
				budget = max(left, 10*time.Second)
			}
		}
	}
	return budget
}

// Click clicks the first element sel matches in one step of the page's own
// script, waiting up to 15 s for it to be there. Pages that redraw
// themselves live (the console's regions, the mirror, the staff page) can
// replace a node between chromedp.Click finding it and clicking it ("Could
// not find node with given id"); this cannot.
func Click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel),
		chromedp.WithPollingTimeout(15*time.Second))
}
