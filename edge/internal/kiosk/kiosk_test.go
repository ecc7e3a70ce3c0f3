package kiosk

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that every page answers what a shopper needs to see, with the
// right status, escaped, and with its security headers.
func TestPages(t *testing.T) {
	r := newRig(t, 0, nil, nil)
	c := r.shopper(t)
	cases := []struct {
		name   string
		path   string
		stale  bool
		status int
		want   []string
		not    []string
	}{
		{name: "start", path: "/kiosk/", status: 200,
			want: []string{"Scan a product", `action="/kiosk/p/"`, `name="code"`, "autofocus", `new EventSource(`},
			not:  []string{"In your fitting room"}},
		{name: "product by SKU", path: "/kiosk/p/TEE-M-BLU", status: 200, want: []string{
			`<h1 id="name">Organic Tee</h1>`, `id="brand">Omni<`, "Size M · Blue", "€49.95",
			`src="https://cdn.invalid/tee.png"`, `alt="Organic Tee, size M, Blue"`,
			"Stock as of 14:00", "Only 2 left", "<b>S2</b> <span>In stock</span>", "<b>S3</b> <span>Out of stock</span>",
			`id="online"><b>Online</b> <span>In stock</span>`,
			`data-sku="TEE-M-BLU" aria-current="true"`, `class="tile out" href="/kiosk/p/TEE-L-BLU"`,
			"In 1 store nearby", "<h3>Red</h3>", "No stock information",
			"★★★★☆", "<b>4.3</b>", "(3 reviews)", `<progress max="3" value="2">`,
			"Soft &lt;b&gt;and&lt;/b&gt; warm", "&lt;script&gt;alert(1)&lt;/script&gt;", "A shopper", "1 Mar 2026",
			"Write a review", `name="rating" value="5"`, `name="sku" value="TEE-M-BLU"`, `maxlength="120"`,
			// True whether HQ publishes reviews at once or holds them for a
			// moderator: the store does not know which.
			"Every review is checked before it appears here, which can take a while."}},
		{name: "product by GTIN", path: "/kiosk/p/" + r.g.RedM, status: 200,
			want: []string{"Size M · Red", "€54.95", `data-sku="TEE-M-RED" aria-current="true"`}},
		{name: "product by query and element string", path: "/kiosk/p/?code=" + url.QueryEscape("(01)"+r.g.S+"(21)X1"), status: 200,
			want: []string{"Size S · Blue", `data-sku="TEE-S-BLU" aria-current="true"`, "In stock"}},
		{name: "product by EPC", path: "/kiosk/p/" + rfidEPC, status: 200, want: []string{"Slim Jeans", "£89.00", "Only 3 left"}},
		{name: "zone kept in links", path: "/kiosk/p/TEE-M-BLU?zone=" + testZone, status: 200,
			want: []string{`href="/kiosk/p/TEE-L-BLU?zone=room-1"`, `name="zone" value="room-1"`, "Your fitting room"}},
		{name: "stale", path: "/kiosk/p/TEE-M-BLU", stale: true, status: 200,
			want: []string{`class="fresh stale"`, "This kiosk is offline — stock shown as of 14:00"}},
		{name: "not found", path: "/kiosk/p/NOPE-1", status: 404,
			want: []string{"We couldn&#39;t find that product", "<code>NOPE-1</code>", `value="NOPE-1"`}},
		{name: "invalid", path: "/kiosk/p/09506000134353", status: 400,
			want: []string{"That isn&#39;t a valid product code", "Incorrect check digit, expected 2"}},
		{name: "invalid EPC URI", path: "/kiosk/p/?code=" + url.QueryEscape("urn:epc:id:sgtin:nonsense"), status: 400,
			want: []string{"That isn&#39;t a valid product code"}},
		{name: "hostile code escaped", path: "/kiosk/p/?code=" + url.QueryEscape(`<img src=x onerror=alert(1)>`), status: 404,
			want: []string{"&lt;img src=x onerror=alert(1)&gt;"}, not: []string{"<img src=x"}},
		{name: "empty code", path: "/kiosk/p/", status: http.StatusSeeOther},
		{name: "fitting room", path: "/kiosk/?zone=" + testZone, status: 200, want: []string{
			"In your fitting room", `data-room="/kiosk/room/room-1?view=`, `data-room-stream="/kiosk/room/room-1/stream"`, "Organic Tee", "You're trying <b>size M, Blue</b>",
			`name="from" value="TEE-M-BLU"`, `name="sku" value="TEE-S-BLU"`, `value="TEE-L-BLU" disabled`, "Not in store",
			`value="TEE-M-RED"><span>M · Red</span><small>Ask</small>`,
			`name="reason" value="help"`, `name="sku" value="TEE-M-BLU">Help with this item</button>`, `id="help">Call a colleague</button>`}},
		{name: "empty fitting room", path: "/kiosk/?zone=room-9", status: 200, want: []string{"Nothing here yet", `id="help">Call a colleague</button>`},
			not: []string{"Help with this item"}},
		{name: "room fragment", path: "/kiosk/room/" + testZone, status: 200,
			want: []string{`<li class="item" data-gtin="` + r.g.M + `"`}, not: []string{"<html"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.cat.stale = tc.stale
			defer func() { r.cat.stale = false }()
			a := r.get(t, c, tc.path)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d:\n%s", a.status, tc.status, visible(a.body))
			}
			for _, w := range tc.want {
				if !strings.Contains(a.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(a.body, n) {
					t.Errorf("page has %q", n)
				}
			}
			if t.Failed() {
				t.Logf("page:\n%s", visible(a.body))
			}
			if a.status == http.StatusSeeOther {
				return
			}
			if a.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			csp := a.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP %q", csp)
			}
			if m := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp); m == nil {
				t.Errorf("CSP without a script nonce: %q", csp)
			} else if strings.Contains(a.body, "<script") && !strings.Contains(a.body, `<script nonce="`+m[1]+`">`) {
				t.Error("the page's script does not carry the CSP nonce")
			}
		})
	}
}

// Ensure that the review form appends exactly one review event per product
// per session, replays answer the same thanks, and a second, different
// review in the same visit is refused politely.
func TestReview(t *testing.T) {
	r := newRig(t, 0, nil, nil)
	c := r.shopper(t)
	page := r.get(t, c, "/kiosk/p/"+r.g.M)
	form := url.Values{"csrf": {csrf(t, page.body)}, "code": {r.g.M}, "sku": {"TEE-M-BLU"}, "rating": {"4"},
		"title": {"  Great fit "}, "text": {"Soft, and true to size.\r\nWould buy again."}, "nickname": {"Bo"}}

	a := r.post(t, c, "/kiosk/review", form, nil)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/kiosk/p/"+r.g.M+"?note=thanks" {
		t.Fatalf("first review: %d %q\n%s", a.status, a.header.Get("Location"), visible(a.body))
	}
	got := outboxEvents[events.Review](t, r.ob, events.KindReview)
	want := events.Review{ProductID: "P-TEE", SKU: "TEE-M-BLU", Rating: 4, Title: "Great fit",
		Text: "Soft, and true to size.\nWould buy again.", Nickname: "Bo", Session: r.sessionID(t, c)}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("reviews in outbox %+v, want [%+v]", got, want)
	}
	if err := events.ValidToken(want.Session); err != nil || len(want.Session) > events.MaxSessionLen {
		t.Fatalf("session id %q: %v", want.Session, err)
	}

	// A double submit: the same thanks, still one event.
	a = r.post(t, c, "/kiosk/review", form, nil)
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Location"), "note=thanks") {
		t.Fatalf("replay: %d %q", a.status, a.header.Get("Location"))
	}
	thanks := r.get(t, c, a.header.Get("Location"))
	// It promises no moderator (HQ may publish at once) and no instant
	// appearance (HQ may hold it; the store may be offline).
	if !strings.Contains(thanks.body, "Thanks for your review! It will appear here once it has passed our checks, which can take a while.") ||
		strings.Contains(thanks.body, `action="/kiosk/review`) {
		t.Fatalf("thanks page:\n%s", visible(thanks.body))
	}

	// Another review of the same product (another variant) in this visit.
	other := url.Values{}
	for k, v := range form {
		other[k] = v
	}
	other.Set("rating", "1")
	other.Set("sku", "TEE-M-RED")
	a = r.post(t, c, "/kiosk/review", other, nil)
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Location"), "note=reviewed") {
		t.Fatalf("second review: %d %q", a.status, a.header.Get("Location"))
	}
	if p := r.get(t, c, a.header.Get("Location")); !strings.Contains(p.body, "You&#39;ve already reviewed this product during this visit") {
		t.Fatalf("already-reviewed page:\n%s", visible(p.body))
	}
	if n := len(outboxEvents[events.Review](t, r.ob, events.KindReview)); n != 1 {
		t.Fatalf("%d reviews after a second one in the same visit, want 1", n)
	}

	// "Done" ends the visit: the next shopper may review the product.
	a = r.post(t, c, "/kiosk/done", url.Values{"csrf": {form.Get("csrf")}}, nil)
	if a.status != http.StatusSeeOther || r.sessionID(t, c) != "" {
		t.Fatalf("done: %d, session %q", a.status, r.sessionID(t, c))
	}
	page = r.get(t, c, "/kiosk/p/"+r.g.M)
	if id := r.sessionID(t, c); id == "" || id == want.Session {
		t.Fatalf("after Done the session is %q (was %q)", id, want.Session)
	}
	other.Set("csrf", csrf(t, page.body))
	if a = r.post(t, c, "/kiosk/review", other, nil); a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Location"), "note=thanks") {
		t.Fatalf("next shopper's review: %d %q", a.status, a.header.Get("Location"))
	}
	if got := outboxEvents[events.Review](t, r.ob, events.KindReview); len(got) != 2 || got[1].Rating != 1 || got[1].SKU != "TEE-M-RED" {
		t.Fatalf("reviews %+v", got)
	}
}

// Ensure that bad or unauthorised review posts append nothing and say why.
func TestReview_Refused(t *testing.T) {
	r := newRig(t, 0, nil, nil)
	c := r.shopper(t)
	page := r.get(t, c, "/kiosk/p/TEE-M-BLU")
	good := func() url.Values {
		return url.Values{"csrf": {csrf(t, page.body)}, "code": {"TEE-M-BLU"}, "sku": {"TEE-M-BLU"}, "rating": {"5"}}
	}
	with := func(k, v string) url.Values { f := good(); f.Set(k, v); return f }
	cases := []struct {
		name   string
		form   url.Values
		header map[string]string
		status int
		want   []string
	}{
		{"rating too high", with("rating", "7"), nil, 400, []string{`id="err-rating"`, "Rating must be 1 to 5 stars, got 7.", "nothing was sent"}},
		{"rating missing", with("rating", ""), nil, 400, []string{"Please choose 1 to 5 stars."}},
		{"rating not a number", with("rating", "five"), nil, 400, []string{"Please choose 1 to 5 stars."}},
		{"title too long", with("title", strings.Repeat("é", events.MaxReviewTitle+1)), nil, 400,
			[]string{`id="err-title"`, "Title must be at most 120 characters, got 121.", `value="` + strings.Repeat("é", 121) + `"`, `checked`}},
		{"every bad field at once", func() url.Values { f := with("rating", "0"); f.Set("nickname", strings.Repeat("x", 41)); return f }(), nil, 400,
			[]string{`id="err-rating"`, `id="err-nickname"`}},
		{"control characters", with("text", "hi\x07there"), nil, 400, []string{`id="err-text"`, "must not contain control characters"}},
		{"no form token", func() url.Values { f := good(); f.Del("csrf"); return f }(), nil, 403, []string{"This page had expired", "Nothing was sent"}},
		{"forged form token", with("csrf", "AAAA"), nil, 403, []string{"This page had expired"}},
		{"cross-origin", good(), map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403,
			[]string{"can&#39;t be sent from here"}},
		{"too large", with("text", strings.Repeat("x", MaxFormBytes)), nil, 413, []string{"too much text"}},
		{"unknown product", with("code", "NOPE-1"), nil, 404, []string{"We couldn&#39;t find that product"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := r.post(t, c, "/kiosk/review", tc.form, tc.header)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d:\n%s", a.status, tc.status, visible(a.body))
			}
			for _, w := range tc.want {
				if !strings.Contains(a.body, w) {
					t.Errorf("answer lacks %q:\n%s", w, visible(a.body))
				}
			}
			if n := len(outboxEvents[events.Review](t, r.ob, events.KindReview)); n != 0 {
				t.Fatalf("%d reviews appended", n)
			}
		})
	}
	// A same-origin browser post passes the origin check.
	a := r.post(t, c, "/kiosk/review", good(), map[string]string{"Origin": r.srv.URL, "Sec-Fetch-Site": "same-origin"})
	if a.status != http.StatusSeeOther {
		t.Fatalf("same-origin post: %d\n%s", a.status, visible(a.body))
	}
}

// Ensure that a full outbox answers 507 with a polite message.
func TestReview_OutboxFull(t *testing.T) {
	r := newRig(t, 200, nil, nil)
	c := r.shopper(t)
	page := r.get(t, c, "/kiosk/p/TEE-M-BLU")
	a := r.post(t, c, "/kiosk/review", url.Values{"csrf": {csrf(t, page.body)}, "code": {"TEE-M-BLU"}, "rating": {"3"}, "title": {"ok"}}, nil)
	if a.status != http.StatusInsufficientStorage || !strings.Contains(a.body, "storage is full") || !strings.Contains(a.body, `value="ok"`) {
		t.Fatalf("full outbox: %d\n%s", a.status, visible(a.body))
	}
	if n := len(outboxEvents[events.Review](t, r.ob, events.KindReview)); n != 0 {
		t.Fatalf("%d reviews appended", n)
	}
}

// Ensure that "ask for your size" appends one assist event per session,
// zone and size, however often it is tapped, and confirms it.
func TestAssist(t *testing.T) {
	r := newRig(t, 0, nil, nil)
	c := r.shopper(t)
	page := r.get(t, c, "/kiosk/?zone="+testZone)
	form := url.Values{"csrf": {csrf(t, page.body)}, "zone": {testZone}, "from": {"TEE-M-BLU"}, "sku": {"TEE-S-BLU"}}
	for i := range 3 {
		a := r.post(t, c, "/kiosk/assist", form, nil)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/kiosk/?asked=TEE-S-BLU&zone=room-1" {
			t.Fatalf("tap %d: %d %q\n%s", i, a.status, a.header.Get("Location"), visible(a.body))
		}
	}
	got := outboxEvents[events.Assist](t, r.ob, events.KindAssist)
	if want := (events.Assist{Zone: testZone, SKU: "TEE-S-BLU", From: "TEE-M-BLU"}); len(got) != 1 || got[0] != want {
		t.Fatalf("assists %+v, want [%+v]", got, want)
	}
	done := r.get(t, c, "/kiosk/?asked=TEE-S-BLU&zone=room-1")
	if !strings.Contains(done.body, "A colleague is bringing it: Organic Tee, size S, Blue.") {
		t.Fatalf("no confirmation:\n%s", visible(done.body))
	}
	// Another size is another request; a zone with a space is fine too.
	form.Set("sku", "TEE-M-RED")
	form.Set("zone", "Room 2")
	if a := r.post(t, c, "/kiosk/assist", form, nil); a.status != http.StatusSeeOther {
		t.Fatalf("second size: %d", a.status)
	}
	if got = outboxEvents[events.Assist](t, r.ob, events.KindAssist); len(got) != 2 || got[1].Zone != "Room 2" {
		t.Fatalf("assists %+v", got)
	}
	// Bad input and forged posts append nothing.
	for _, f := range []url.Values{
		{"csrf": {form.Get("csrf")}, "zone": {testZone}, "sku": {"has space"}},
		{"csrf": {form.Get("csrf")}, "sku": {"TEE-L-BLU"}},
		{"csrf": {"forged"}, "zone": {testZone}, "sku": {"TEE-L-BLU"}},
	} {
		if a := r.post(t, c, "/kiosk/assist", f, nil); a.status != 400 && a.status != 403 {
			t.Fatalf("bad assist %v: %d", f, a.status)
		}
	}
	if n := len(outboxEvents[events.Assist](t, r.ob, events.KindAssist)); n != 2 {
		t.Fatalf("%d assists after refused posts, want 2", n)
	}
}

// Ensure that the mirror's calls for help (in the room, or with the item
// she is trying) each append one assist with reason help, once per view of
// the page however often it is tapped, apart from size requests for the
// same item, and that bad calls append nothing.
func TestAssist_Help(t *testing.T) {
	r := newRig(t, 0, nil, nil)
	c := r.shopper(t)
	page := r.get(t, c, "/kiosk/?zone="+testZone)
	view := regexp.MustCompile(`name="view" value="([^"]+)"`).FindStringSubmatch(page.body)
	if view == nil || !strings.Contains(page.body, `data-room="/kiosk/room/room-1?view=`+view[1]+`"`) {
		t.Fatalf("no view on the page:\n%s", visible(page.body))
	}
	// The room's refresh keeps the page's view, so its forms stay the
	// same between refreshes; a view the page could not have made is
	// dropped.
	if f := r.get(t, c, "/kiosk/room/"+testZone+"?view="+view[1]); !strings.Contains(f.body, `name="view" value="`+view[1]+`"`) {
		t.Fatalf("fragment lost the view:\n%s", f.body)
	}
	if f := r.get(t, c, "/kiosk/room/"+testZone+"?view="+url.QueryEscape("a b\"><x")); !strings.Contains(f.body, `name="view" value=""`) {
		t.Fatalf("fragment kept a bad view:\n%s", f.body)
	}
	tok := csrf(t, page.body)
	post := func(f url.Values) answer {
		t.Helper()
		f.Set("csrf", tok)
		f.Set("zone", testZone)
		return r.post(t, c, "/kiosk/assist", f, nil)
	}
	steps := []struct {
		name     string
		form     url.Values
		location string
		events   int // assists in the outbox after it
	}{
		{"in the room", url.Values{"reason": {"help"}, "view": {view[1]}}, "/kiosk/?helped=room&zone=room-1", 1},
		{"double tap", url.Values{"reason": {"help"}, "view": {view[1]}}, "/kiosk/?helped=room&zone=room-1", 1},
		{"with the item", url.Values{"reason": {"help"}, "view": {view[1]}, "sku": {"TEE-M-BLU"}}, "/kiosk/?helped=TEE-M-BLU&zone=room-1", 2},
		{"with the item again", url.Values{"reason": {"help"}, "view": {view[1]}, "sku": {"TEE-M-BLU"}}, "/kiosk/?helped=TEE-M-BLU&zone=room-1", 2},
		{"the item's size M from S", url.Values{"from": {"TEE-S-BLU"}, "sku": {"TEE-M-BLU"}}, "/kiosk/?asked=TEE-M-BLU&zone=room-1", 3},
		{"later, from a new page", url.Values{"reason": {"help"}, "view": {"another-view-0123456789"}}, "/kiosk/?helped=room&zone=room-1", 4},
	}
	for _, st := range steps {
		a := post(st.form)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != st.location {
			t.Fatalf("%s: %d %q\n%s", st.name, a.status, a.header.Get("Location"), visible(a.body))
		}
		if n := len(outboxEvents[events.Assist](t, r.ob, events.KindAssist)); n != st.events {
			t.Fatalf("%s: %d assists, want %d", st.name, n, st.events)
		}
	}
	got := outboxEvents[events.Assist](t, r.ob, events.KindAssist)
	want := []events.Assist{
		{Zone: testZone, Reason: events.AssistHelp},
		{Zone: testZone, SKU: "TEE-M-BLU", From: "TEE-M-BLU", Reason: events.AssistHelp},
		{Zone: testZone, SKU: "TEE-M-BLU", From: "TEE-S-BLU"},
		{Zone: testZone, Reason: events.AssistHelp},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("assists\n got %+v\nwant %+v", got, want)
	}
	for path, text := range map[string]string{
		"/kiosk/?helped=room&zone=room-1":      "A colleague is on the way to your fitting room. Please wait here.",
		"/kiosk/?helped=TEE-M-BLU&zone=room-1": "A colleague is on the way to help with Organic Tee, size M, Blue. Please wait here.",
	} {
		if p := r.get(t, c, path); !strings.Contains(p.body, text) {
			t.Fatalf("%s: no %q:\n%s", path, text, visible(p.body))
		}
	}
	// Bad calls append nothing.
	for _, f := range []url.Values{
		{"reason": {"help"}, "sku": {"has space"}},
		{"reason": {"hurry"}, "sku": {"TEE-M-BLU"}},
		{"reason": {"help"}, "zone": {""}},
	} {
		f.Set("csrf", tok)
		if f.Get("zone") == "" && !f.Has("zone") {
			f.Set("zone", testZone)
		}
		if a := r.post(t, c, "/kiosk/assist", f, nil); a.status != http.StatusBadRequest {
			t.Fatalf("bad call %v: %d", f, a.status)
		}
	}
	if n := len(outboxEvents[events.Assist](t, r.ob, events.KindAssist)); n != len(want) {
		t.Fatalf("%d assists after refused calls, want %d", n, len(want))
	}
}

// Ensure that a session ends after SessionIdle without the shopper's
// activity, that automatic requests do not keep it alive, and that the next
// shopper's session is new.
func TestSession_Idle(t *testing.T) {
	r := newRig(t, 0, nil, nil)
	c := r.shopper(t)
	r.get(t, c, "/kiosk/p/TEE-M-BLU")
	first := r.sessionID(t, c)
	if len(first) != 22 {
		t.Fatalf("session id %q", first)
	}
	r.advance(9 * time.Minute)
	r.get(t, c, "/kiosk/p/TEE-S-BLU") // her activity
	r.advance(9 * time.Minute)
	if r.get(t, c, "/kiosk/room/"+testZone); r.sessionID(t, c) != first {
		t.Fatal("session ended within 10 minutes of activity")
	}
	r.advance(2 * time.Minute) // 11 minutes since her last action; the room refresh did not count
	r.get(t, c, "/kiosk/?zone="+testZone+"&idle=1")
	next := r.sessionID(t, c)
	if next == "" || next == first {
		t.Fatalf("session after 11 idle minutes %q (was %q)", next, first)
	}
}

func TestFormatPrice(t *testing.T) {
	for _, tc := range []struct {
		minor int64
		cur   string
		want  string
	}{
		{4995, "EUR", "€49.95"}, {4995, "usd", "$49.95"}, {5, "GBP", "£0.05"}, {4995, "CHF", "49.95 CHF"},
		{129900, "EUR", "€1,299.00"}, {1500, "JPY", "1,500 JPY"}, {12345, "KWD", "12.345 KWD"}, {-250, "EUR", "-€2.50"},
		{123456789, "", "1,234,567.89"},
	} {
		if got := FormatPrice(tc.minor, tc.cur); got != tc.want {
			t.Errorf("FormatPrice(%d, %q) = %q, want %q", tc.minor, tc.cur, got, tc.want)
		}
	}
}

func TestFreshness(t *testing.T) {
	now := testNow
	for _, tc := range []struct {
		asOf  time.Time
		stale bool
		want  string
	}{
		{now.Add(-20 * time.Second), false, "Stock updated just now"},
		{now.Add(-5 * time.Minute), false, "Stock as of 14:00"},
		{now.Add(-30 * time.Hour), false, "Stock as of 2 Mar 08:05"},
		{now.Add(-2 * time.Hour), true, "This kiosk is offline — stock shown as of 12:05"},
		{time.Date(2025, 12, 31, 9, 0, 0, 0, time.UTC), true, "This kiosk is offline — stock shown as of 31 Dec 2025 09:00"},
		{time.Time{}, false, "Stock information is not available yet"},
	} {
		if got := Freshness(tc.asOf, now, tc.stale); got != tc.want {
			t.Errorf("Freshness(%v, stale %v) = %q, want %q", tc.asOf, tc.stale, got, tc.want)
		}
	}
}
