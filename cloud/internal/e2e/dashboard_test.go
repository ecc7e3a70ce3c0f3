package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the HQ dashboard, rendered by a real browser, shows the
// stores, their sync state, low stock and dead letters.
func TestDashboardInBrowser(t *testing.T) {
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	a := startAgent(t, "S1", "pos-1", ns.URL())
	mustPost(t, a.URL, receiptBody("SKU-LOW", 3))
	mustPost(t, a.URL, receiptBody("SKU-HIGH", 300))
	waitDrained(t, a, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-LOW")["S1"] == 3 }, "stock applied")

	dom := testkit.RenderDOM(t, h.URL+"/")
	for _, want := range []string{"omnisync HQ", "<td>S1</td>", "<td>pos-1</td>", "connected", "SKU-LOW"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("dashboard lacks %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, "SKU-HIGH") {
		t.Fatal("a well-stocked SKU is listed as low stock")
	}
	if dir := os.Getenv("OMNI_SCREENSHOTS"); dir != "" {
		testkit.Screenshot(t, h.URL+"/", filepath.Join(dir, "hq-dashboard.png"), 1280, 900)
	}
}
