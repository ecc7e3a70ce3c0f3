package kiosk

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/scanstream"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// browserRig is a kiosk with the agent's real scan stream, driven by
// headless Chromium.
type browserRig struct {
	*rig
	scans *scanstream.Broker
	ctx   context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowserRig(t *testing.T, tweak func(*Options)) *browserRig {
	t.Helper()
	testkit.Chromium(t)
	scans := scanstream.New(scanstream.Options{})
	r := newRig(t, 0, tweak, func(mux *http.ServeMux) { mux.Handle("GET /v1/scans/stream", scans) })
	// A picture that does not load must break nothing.
	r.cat.products[0].ImageURL = r.srv.URL + "/img/missing.png"
	// The browser closes (its streams with it) before the server does.
	b := &browserRig{rig: r, scans: scans, ctx: testkit.Browser(t)}
	msgs := chromedp.Console(b.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range b.console {
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				t.Errorf("browser console: %s", m.Text)
			}
		}
	})
	return b
}

// do runs actions with a deadline.
func (b *browserRig) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Fatalf("%s: %v (page %s)", what, err, loc)
	}
}

func (b *browserRig) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browserRig) location(t *testing.T) string {
	t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(loc, b.srv.URL)
}

// waitListening waits until the page's EventSource is connected: a scan
// published before would be missed, as it would by a kiosk still loading.
func (b *browserRig) waitListening(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.scans.Wait(ctx, 1); err != nil {
		t.Fatalf("the page never subscribed to the scan stream: %v", err)
	}
}

// scan publishes s until sel is visible: a page that is still connecting
// to the stream misses a scan, as a real kiosk would, so the shopper scans
// again.
func (b *browserRig) scan(t *testing.T, s scanstream.Scan, sel string) {
	t.Helper()
	b.waitListening(t)
	for try := 0; ; try++ {
		b.scans.Publish(s)
		ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
		err := chromedp.Do(ctx, chromedp.WaitVisible(sel))
		cancel()
		if err == nil {
			return
		}
		if try == 4 {
			t.Fatalf("scan %+v: %s never showed: %v (page %s)", s, sel, err, b.location(t))
		}
	}
}

// Ensure that a shopper at the kiosk sees a scanned product without a
// touch, can type a code, review the product and is told when a code is
// not valid.
func TestKioskInBrowser(t *testing.T) {
	b := newBrowserRig(t, nil)

	b.do(t, "open the start screen", chromedp.Navigate(b.srv.URL+"/kiosk/"), chromedp.WaitVisible("#code"))
	b.scan(t, scanstream.Scan{Device: "scanner-1", Raw: "]E0" + b.g.M[1:], Symbology: "]E0", GS1: true, GTIN: b.g.M},
		`a.tile[data-sku="TEE-M-BLU"][aria-current="true"]`)
	if got := b.text(t, "#name"); got != "Organic Tee" {
		t.Fatalf("product name %q", got)
	}
	if got := b.text(t, "#variant"); got != "Size M · Blue" {
		t.Fatalf("variant %q", got)
	}
	if got := b.text(t, "#here"); !strings.Contains(got, "Only 2 left") {
		t.Fatalf("stock here %q", got)
	}
	if loc := b.location(t); loc != "/kiosk/p/"+b.g.M {
		t.Fatalf("location after the scan %q", loc)
	}
	b.do(t, "the missing picture is hidden", chromedp.Poll[chromedp.Void](`document.querySelector("img.pic.broken") !== null`,
		chromedp.WithPollingTimeout(10*time.Second)))

	b.do(t, "type a code", chromedp.SendKeys("#code", "TEE-L-BLU"), chromedp.Click("#go"),
		chromedp.WaitVisible(`a.tile[data-sku="TEE-L-BLU"][aria-current="true"]`))
	if got := b.text(t, "#here"); !strings.Contains(got, "Out of stock") {
		t.Fatalf("stock here of L %q", got)
	}

	b.do(t, "write a review",
		chromedp.Click("#rating-4 + span"),
		chromedp.SendKeys("#rv-title", "Lovely <3"),
		chromedp.SendKeys("#rv-text", "Fits well.\nTrue to size."),
		chromedp.SendKeys("#rv-nick", "Kim"),
		chromedp.Click("#send-review"),
		chromedp.WaitVisible("#thanks"))
	if got := b.text(t, "#banner"); !strings.Contains(got, "Thanks for your review") {
		t.Fatalf("banner %q", got)
	}
	got := outboxEvents[events.Review](t, b.ob, events.KindReview)
	if len(got) != 1 || got[0].Rating != 4 || got[0].SKU != "TEE-L-BLU" || got[0].Title != "Lovely <3" || got[0].Nickname != "Kim" || got[0].Text != "Fits well.\nTrue to size." || got[0].Session == "" {
		t.Fatalf("reviews in the outbox %+v", got)
	}

	b.do(t, "a review without stars is refused",
		chromedp.Navigate(b.srv.URL+"/kiosk/p/TEE-S-BLU"), chromedp.WaitVisible("#send-review"),
		chromedp.Click("#send-review"), chromedp.WaitVisible("#err-rating"))
	if n := len(outboxEvents[events.Review](t, b.ob, events.KindReview)); n != 1 {
		t.Fatalf("%d reviews after a refused one", n)
	}

	b.do(t, "type a bad code", chromedp.Navigate(b.srv.URL+"/kiosk/"), chromedp.WaitVisible("#code"),
		chromedp.SendKeys("#code", "09506000134353"), chromedp.Click("#go"), chromedp.WaitVisible("#msg"))
	if got := b.text(t, "#msg"); got != "That isn't a valid product code" {
		t.Fatalf("heading %q", got)
	}
	if got := b.text(t, "#detail"); !strings.Contains(got, "check digit") {
		t.Fatalf("reason %q", got)
	}

	screenshots(t, b.rig)
}

// Ensure that a fitting-room mirror lists what is brought in, asks for
// another size with one tap, follows scans with the zone kept, and returns
// to its room when left alone.
func TestFittingRoomInBrowser(t *testing.T) {
	b := newBrowserRig(t, func(o *Options) { o.RoomRefresh = 300 * time.Millisecond; o.IdleReturn = 1500 * time.Millisecond })
	room := b.srv.URL + "/kiosk/?zone=" + testZone

	b.do(t, "open the room", chromedp.Navigate(room), chromedp.WaitVisible(`li.item[data-gtin="`+b.g.M+`"]`))
	// The room's reader sees jeans come in: the list grows, the page stays.
	b.room.bring(testZone, devices.PresentItem{GTIN: rfidGTIN, EPC: rfidEPC, Since: testNow})
	b.scan(t, scanstream.Scan{Device: "rfid-1", Raw: rfidEPC, Symbology: "rfid:" + testZone, GS1: true, GTIN: rfidGTIN, EPC: rfidEPC},
		`li.item[data-gtin="`+rfidGTIN+`"]`)
	if loc := b.location(t); loc != "/kiosk/?zone="+testZone {
		t.Fatalf("an RFID read in the room navigated to %q", loc)
	}

	b.do(t, "ask for size 32", testkit.Click(`button[name="sku"][value="JEANS-32"]`), chromedp.WaitVisible("#banner"))
	if got := b.text(t, "#banner"); !strings.Contains(got, "A colleague is bringing it: Slim Jeans, size 32") {
		t.Fatalf("banner %q", got)
	}
	as := outboxEvents[events.Assist](t, b.ob, events.KindAssist)
	if want := (events.Assist{Zone: testZone, SKU: "JEANS-32", From: "JEANS-30"}); len(as) != 1 || as[0] != want {
		t.Fatalf("assists %+v, want [%+v]", as, want)
	}

	// A barcode scanned at the mirror shows the product, in the room.
	b.scan(t, scanstream.Scan{Device: "scanner-1", Raw: b.g.L, GTIN: b.g.L}, `a.tile[data-sku="TEE-L-BLU"][aria-current="true"]`)
	if loc := b.location(t); !strings.Contains(loc, "zone="+testZone) {
		t.Fatalf("the zone was lost: %q", loc)
	}
	// Left alone, the mirror goes back to its room.
	b.do(t, "idle return", chromedp.WaitVisible(`#room-h`))
	if loc := b.location(t); !strings.HasPrefix(loc, "/kiosk/?zone="+testZone) || !strings.Contains(loc, "idle=1") {
		t.Fatalf("after idling the page is %q", loc)
	}
}

// screenshots saves the pages as a portrait mirror (and the product page in
// landscape) when OMNI_SCREENSHOTS names a directory.
func screenshots(t *testing.T, r *rig) {
	dir := os.Getenv("OMNI_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, s := range []struct {
		name, path string
		w, h       int
	}{
		{"kiosk-start.png", "/kiosk/", 1080, 1920},
		{"kiosk-product.png", "/kiosk/p/TEE-M-BLU", 1080, 1920},
		{"kiosk-product-landscape.png", "/kiosk/p/TEE-M-BLU", 1920, 1080},
		{"kiosk-fitting-room.png", "/kiosk/?zone=" + testZone, 1080, 1920},
		{"kiosk-not-found.png", "/kiosk/p/NOPE-1", 1080, 1920},
		{"kiosk-invalid.png", "/kiosk/p/09506000134353", 1080, 1920},
	} {
		testkit.Screenshot(t, r.srv.URL+s.path, filepath.Join(dir, s.name), s.w, s.h)
	}
}
