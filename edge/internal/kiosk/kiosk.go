package kiosk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/posapi"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// MaxFormBytes bounds a POST body.
const MaxFormBytes = 64 << 10

// maxCodeLen bounds a typed or scanned code (a long Digital Link URI fits).
const maxCodeLen = 1024

// maxRoomItems bounds the items a fitting room lists.
const maxRoomItems = 20

// Products looks up what a code names. Errors wrap downsync.ErrNotFound for
// a valid code that names no product and downsync.ErrInvalidCode for a code
// that is not a valid one.
type Products interface {
	Lookup(ctx context.Context, code string) (downsync.View, error)
}

// Options configures the page.
type Options struct {
	// Store and Device name the agent, for logs.
	Store, Device string
	// Products answers lookups from the agent's product cache.
	Products Products
	// Outbox receives review and assist events.
	Outbox posapi.Appender
	// Suggest gives the mirror the complements of the items in the room
	// (suggest.go); nil shows none.
	Suggest Suggester
	// Carts keeps the shoppers' carts (cart.go); nil: no cart screen.
	Carts Carts
	// Surveys returns the active survey HQ asks to offer where offer says
	// (downsync.OfferPostPurchase, OfferFittingRoom), from the agent's
	// down-sync cache (survey.go); nil: no surveys.
	Surveys func(offer string) (downsync.SurveyDoc, bool)
	// Present lists the items now in each fitting-room zone (RFID). Nil when
	// the store has no fitting-room readers.
	Present func() map[string][]devices.PresentItem
	// Logger receives what the page recorded and what failed; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
	// SessionIdle ends a shopper's session after this long without an
	// action of hers; 0 means 10 minutes.
	SessionIdle time.Duration
	// IdleReturn is how long a page waits without a touch before it returns
	// to the start screen; 0 means 60 seconds.
	IdleReturn time.Duration
	// RoomRefresh is how often a fitting room's page refreshes its item
	// list; 0 means 3 seconds. The page also refreshes it as soon as the
	// room's items change (roomstream.go), which RoomWatch (how often the
	// stream looks at them; 0 means 200 ms) bounds.
	RoomRefresh, RoomWatch time.Duration
}

// Kiosk serves the shopper's page.
type Kiosk struct {
	o    Options
	log  *slog.Logger
	tmpl *template.Template
	key  []byte // signs form tokens
	cop  *http.CrossOriginProtection

	// streams counts the open room streams (roomstream.go); present
	// caches what Present last said for every stream to share.
	streams atomic.Int32
	present presentCache
}

//go:embed kiosk.html
var pageHTML string

//go:embed kiosk.css
var pageCSS string

//go:embed kiosk.js
var pageJS string

//go:embed suggest.html
var suggestHTML string

var templates = template.Must(template.Must(template.New("kiosk").Parse(pageHTML)).Parse(suggestHTML))

// New builds the page.
func New(o Options) *Kiosk {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 10 * time.Minute
	}
	if o.IdleReturn <= 0 {
		o.IdleReturn = 60 * time.Second
	}
	if o.RoomRefresh <= 0 {
		o.RoomRefresh = 3 * time.Second
	}
	if o.RoomWatch <= 0 {
		o.RoomWatch = 200 * time.Millisecond
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Kiosk{
		o:    o,
		log:  o.Logger.With("store", o.Store, "device", o.Device),
		tmpl: templates,
		key:  key,
		cop:  http.NewCrossOriginProtection(),
	}
}

// Register adds the page's routes to mux: GET /kiosk/ (start screen,
// ?zone= for a fitting-room mirror), GET /kiosk/p/{code...} (product, or
// /kiosk/p/?code=), GET /kiosk/room/{zone} (the room's item list, for the
// page's refresh), GET /kiosk/room/{zone}/stream (its changes, as
// Server-Sent Events), POST /kiosk/review, POST /kiosk/assist and POST
// /kiosk/done (end the session).
func (k *Kiosk) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /kiosk", func(w http.ResponseWriter, r *http.Request) {
		u := "/kiosk/"
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /kiosk/{$}", k.start)
	mux.HandleFunc("GET /kiosk/p/{code...}", k.product)
	mux.HandleFunc("GET /kiosk/room/{zone}", k.roomFragment)
	mux.HandleFunc("GET /kiosk/room/{zone}/stream", k.roomStream)
	mux.HandleFunc("POST /kiosk/review", k.postReview)
	mux.HandleFunc("POST /kiosk/assist", k.postAssist)
	mux.HandleFunc("POST /kiosk/done", k.done)
	k.registerCart(mux)
	k.registerSurvey(mux)
}

// start serves the start screen and, for a fitting room, its items.
func (k *Kiosk) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := placeOf(q)
	s := k.session(w, r, q.Get("idle") == "")
	pg := k.newPage(p, s, "start", "Scan a product")
	if q.Get("thanks") != "" {
		pg.Banner = &banner{Kind: "ok", Text: thanksText}
	}
	if p.Zone != "" && k.o.Present != nil {
		pg.Room = k.room(r.Context(), p, s, nonce())
		pg.Title = "Your fitting room"
		if sku := q.Get("asked"); sku != "" && events.ValidSKU(sku) == nil {
			pg.Banner = &banner{Kind: "ok", Text: k.askedText(r.Context(), sku)}
		}
		if h := q.Get("helped"); h != "" && (h == helpRoom || events.ValidSKU(h) == nil) {
			pg.Banner = &banner{Kind: "ok", Text: k.helpedText(r.Context(), h)}
		}
	}
	k.render(w, http.StatusOK, pg)
}

// askedText confirms an assist request, naming the variant when the
// catalog knows it.
func (k *Kiosk) askedText(ctx context.Context, sku string) string {
	if k.o.Products != nil {
		if v, err := k.o.Products.Lookup(ctx, sku); err == nil {
			if i := selectedOf(v); i >= 0 && v.Variants[i].SKU == sku {
				return "A colleague is bringing it: " + v.Product.Name + ", " + describe(v.Variants[i].VariantDoc) + ". Please wait here."
			}
		}
	}
	return "A colleague is bringing it. Please wait here."
}

// helpRoom is the "helped" value of a call for help in the room, about no
// item in particular.
const helpRoom = "room"

// helpedText confirms a call for help, naming the item when there is one
// and the catalog knows it.
func (k *Kiosk) helpedText(ctx context.Context, sku string) string {
	if sku != helpRoom && k.o.Products != nil {
		if v, err := k.o.Products.Lookup(ctx, sku); err == nil {
			if i := selectedOf(v); i >= 0 && v.Variants[i].SKU == sku {
				return "A colleague is on the way to help with " + v.Product.Name + ", " + describe(v.Variants[i].VariantDoc) + ". Please wait here."
			}
		}
	}
	return "A colleague is on the way to your fitting room. Please wait here."
}

// product serves a product page.
func (k *Kiosk) product(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := placeOf(q)
	code := r.PathValue("code")
	if c := q.Get("code"); c != "" {
		code = c
	}
	code = strings.TrimSpace(code)
	if code == "" {
		http.Redirect(w, r, p.Home(), http.StatusSeeOther)
		return
	}
	s := k.session(w, r, true)
	v, ok := k.lookup(w, r, p, s, code)
	if !ok {
		return
	}
	pg := k.productPage(p, s, code, v)
	switch q.Get("note") {
	case "thanks":
		pg.Banner = &banner{Kind: "ok", Text: reviewThanks}
		pg.P.Reviewed = true
	case "reviewed":
		pg.Banner = &banner{Kind: "warn", Text: "You've already reviewed this product during this visit."}
		pg.P.Reviewed = true
	}
	k.render(w, http.StatusOK, pg)
}

// lookup finds a product or answers the error page.
func (k *Kiosk) lookup(w http.ResponseWriter, r *http.Request, p place, s session, code string) (downsync.View, bool) {
	if len(code) > maxCodeLen {
		k.message(w, http.StatusBadRequest, p, s, message{Heading: "That isn't a valid product code",
			Detail: "It is far too long for a product code."})
		return downsync.View{}, false
	}
	if k.o.Products == nil {
		k.message(w, http.StatusServiceUnavailable, p, s, message{Heading: "Product information isn't available on this kiosk",
			Detail: "Please ask a colleague.", Code: code})
		return downsync.View{}, false
	}
	v, err := k.o.Products.Lookup(r.Context(), code)
	switch {
	case err == nil:
		return v, true
	case errors.Is(err, downsync.ErrInvalidCode):
		k.message(w, http.StatusBadRequest, p, s, message{Heading: "That isn't a valid product code",
			Detail: invalidReason(err), Code: code})
	case errors.Is(err, downsync.ErrNotFound):
		k.message(w, http.StatusNotFound, p, s, message{Heading: "We couldn't find that product",
			Detail: "Check the code and try again, or ask a colleague.", Code: code})
	default:
		k.log.Error("kiosk: product lookup failed", "code", code, "err", err)
		k.message(w, http.StatusInternalServerError, p, s, message{Heading: "Something went wrong",
			Detail: "We couldn't look that product up just now. Please try again or ask a colleague.", Code: code})
	}
	return downsync.View{}, false
}

// invalidReason is what made a code invalid, without the error chain's
// prefixes: "check digit should be 5".
func invalidReason(err error) string {
	msg := err.Error()
	marker := downsync.ErrInvalidCode.Error() + ": "
	if i := strings.LastIndex(msg, marker); i >= 0 {
		msg = msg[i+len(marker):]
	} else if i := strings.LastIndex(msg, downsync.ErrInvalidCode.Error()); i >= 0 {
		msg = strings.TrimSpace(msg[i+len(downsync.ErrInvalidCode.Error()):])
	}
	// Drop package prefixes ("gs1: ") that mean nothing to a shopper.
	for {
		head, rest, ok := strings.Cut(msg, ": ")
		if !ok || head == "" || strings.ContainsFunc(head, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
			break
		}
		msg = rest
	}
	if msg == "" {
		return "Check the code and try again."
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

func (k *Kiosk) productPage(p place, s session, code string, v downsync.View) *page {
	pg := k.newPage(p, s, "product", v.Product.Name)
	pg.P = productPage(v, p, k.o.Now())
	pg.P.Form.Code = code
	return pg
}

// room lists the items in a fitting room, each with the other variants of
// its product the shopper can ask for, on the page shown as view.
func (k *Kiosk) room(ctx context.Context, p place, s session, view string) *room {
	rm := &room{Zone: p.Zone, URL: p.Room(view), Stream: "/kiosk/room/" + url.PathEscape(p.Zone) + "/stream",
		CSRF: k.token(s.ID), Place: p, View: view}
	for _, gtin := range k.roomGTINs(p.Zone) {
		ri := roomItem{GTIN: gtin, Name: "Item " + gtin}
		if k.o.Products != nil {
			if v, err := k.o.Products.Lookup(ctx, gtin); err == nil {
				ri = k.roomItem(v, p, gtin)
			} else if !errors.Is(err, downsync.ErrNotFound) && !errors.Is(err, downsync.ErrInvalidCode) {
				k.log.Warn("kiosk: room item lookup failed", "zone", p.Zone, "gtin", gtin, "err", err)
			}
		}
		rm.Items = append(rm.Items, ri)
	}
	rm.Suggestions = k.suggest(ctx, rm.Items)
	return rm
}

func (k *Kiosk) roomItem(v downsync.View, p place, gtin string) roomItem {
	ri := roomItem{GTIN: gtin, Name: v.Product.Name, Image: v.Product.ImageURL, Known: true, Link: p.Product(gtin, nil), ProductID: v.Product.ID}
	sel := selectedOf(v)
	if sel >= 0 {
		tried := v.Variants[sel]
		ri.Size = tried.Size
		ri.SKU, ri.Tried, ri.Price = tried.SKU, describe(tried.VariantDoc), FormatPrice(tried.PriceMinor, tried.Currency)
		if tried.ImageURL != "" {
			ri.Image = tried.ImageURL
		}
	}
	ri.Alt = v.Product.Name
	if ri.Tried != "" {
		ri.Alt += ", " + ri.Tried
	}
	for i, vv := range v.Variants {
		if i == sel {
			continue
		}
		o := assistOption{SKU: vv.SKU, Label: variantLabel(vv.VariantDoc)}
		if sel >= 0 && vv.Colour != "" && vv.Colour != v.Variants[sel].Colour {
			o.Label += " · " + vv.Colour
		}
		switch h := vv.Stock.Here; {
		case h == nil:
			o.Stock = "Ask"
		case h.Available <= 0:
			o.Stock, o.Disabled = "Not in store", true
		case h.Available <= LowStock:
			o.Stock = "Only " + strconv.FormatInt(h.Available, 10) + " left"
		default:
			o.Stock = "In store"
		}
		ri.Options = append(ri.Options, o)
	}
	return ri
}

// roomFragment serves a fitting room's item list for the page's periodic
// refresh. It does not count as the shopper's activity.
func (k *Kiosk) roomFragment(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	q.Set("zone", r.PathValue("zone"))
	p := placeOf(q)
	if p.Zone == "" || k.o.Present == nil {
		http.NotFound(w, r)
		return
	}
	s := k.session(w, r, false)
	var buf bytes.Buffer
	if err := k.tmpl.ExecuteTemplate(&buf, "room", k.room(r.Context(), p, s, validView(q.Get("view")))); err != nil {
		k.log.Error("kiosk: render room", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	k.securityHeaders(w, nonce())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// readForm bounds and parses a POST body and checks that it comes from
// this page: same origin, and the session's form token. It answers the
// error page itself when not.
func (k *Kiosk) readForm(w http.ResponseWriter, r *http.Request) (place, session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		p := placeOf(r.URL.Query())
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			k.message(w, http.StatusRequestEntityTooLarge, p, session{}, message{Heading: "That was too much text",
				Detail: "Please shorten it and try again."})
			return p, session{}, false
		}
		k.message(w, http.StatusBadRequest, p, session{}, message{Heading: "Something went wrong",
			Detail: "We couldn't read that form. Please try again."})
		return p, session{}, false
	}
	p := placeOf(r.PostForm)
	if err := k.cop.Check(r); err != nil {
		k.log.Warn("kiosk: cross-origin form post refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		k.message(w, http.StatusForbidden, p, session{}, message{Heading: "This form can't be sent from here",
			Detail: "Please use the kiosk's own page."})
		return p, session{}, false
	}
	s, ok := k.postSession(w, r)
	if !ok {
		s = k.session(w, r, true)
		msg := message{Heading: "This page had expired", Detail: "Nothing was sent. Please try again."}
		if c := r.PostForm.Get("code"); c != "" && len(c) <= maxCodeLen {
			msg.Back = p.Product(c, nil)
		}
		k.message(w, http.StatusForbidden, p, s, msg)
		return p, s, false
	}
	return p, s, true
}

// reviewThanks thanks a shopper for her review. What happens next depends
// on HQ's review policy, which the store does not have (it stays at the
// hub): every review is screened for blocked words, and then published at
// once or held for a moderator. So the page promises only what holds
// either way: it is checked, and it can take a while to show here (the
// store may be offline too). The form's small print says the same.
const reviewThanks = "Thanks for your review! It will appear here once it has passed our checks, which can take a while."

// reviewFields maps a review body's fields to the form's labels.
var reviewFields = map[string]string{"rating": "Rating", "title": "Title", "text": "Your review", "nickname": "Nickname"}

// postReview records a shopper's review: validated with the event schema's
// limits, appended once per product per session.
func (k *Kiosk) postReview(w http.ResponseWriter, r *http.Request) {
	p, s, ok := k.readForm(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	code := strings.TrimSpace(f.Get("code"))
	v, ok := k.lookup(w, r, p, s, code)
	if !ok {
		return
	}
	pg := k.productPage(p, s, code, v)
	form := &pg.P.Form
	form.Title, form.Text, form.Nickname = formText(f.Get("title")), formText(f.Get("text")), formText(f.Get("nickname"))
	form.Err = map[string]string{}
	for _, vv := range v.Variants {
		if vv.SKU == f.Get("sku") {
			form.SKU = vv.SKU
		}
	}
	rating, err := strconv.Atoi(strings.TrimSpace(f.Get("rating")))
	if err != nil {
		form.Err["rating"] = "Please choose 1 to 5 stars."
	} else {
		form.Rating = rating
	}
	// Each field is checked on its own, with the event schema's validator,
	// so the shopper sees every problem at once.
	body := events.Review{ProductID: v.Product.ID, SKU: form.SKU, Rating: rating, Title: form.Title,
		Text: form.Text, Nickname: form.Nickname, Session: s.ID}
	for _, one := range []events.Review{
		{Rating: rating}, {Rating: 5, Title: body.Title}, {Rating: 5, Text: body.Text}, {Rating: 5, Nickname: body.Nickname},
	} {
		one.ProductID, one.SKU, one.Session = body.ProductID, body.SKU, body.Session
		k.checkReview(one, form)
	}
	data := k.checkReview(body, form)
	if len(form.Err) > 0 || form.GeneralProblem != "" || data == nil {
		pg.Banner = &banner{Kind: "err", Text: "Please check your review: nothing was sent yet."}
		k.render(w, http.StatusBadRequest, pg)
		return
	}
	if k.o.Outbox == nil {
		pg.Banner = &banner{Kind: "err", Text: "Reviews can't be taken on this kiosk. Sorry!"}
		k.render(w, http.StatusServiceUnavailable, pg)
		return
	}
	key := "review:" + s.ID + ":" + v.Product.ID
	envs, replayed, err := k.o.Outbox.AppendOnce(r.Context(), key, []events.Draft{{Kind: events.KindReview, Data: data}})
	switch {
	case err == nil:
		if len(envs) > 0 {
			k.log.Info("kiosk: review recorded", "event", envs[0].ID, "product", v.Product.ID, "replayed", replayed)
		}
		http.Redirect(w, r, p.Product(code, url.Values{"note": {"thanks"}}), http.StatusSeeOther)
		return
	case errors.Is(err, outbox.ErrKeyReused):
		http.Redirect(w, r, p.Product(code, url.Values{"note": {"reviewed"}}), http.StatusSeeOther)
		return
	}
	status, text := k.appendFailure(err, "review")
	pg.Banner = &banner{Kind: "err", Text: text}
	k.render(w, status, pg)
}

// formText is a text field as the shopper meant it: browsers send a
// textarea's line breaks as CRLF, which the event schema refuses as control
// characters.
func formText(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n"))
}

// checkReview validates a review body with the event schema and notes the
// problem on the form; it returns the body to append when it is valid.
func (k *Kiosk) checkReview(body events.Review, form *reviewForm) json.RawMessage {
	raw, err := json.Marshal(body)
	if err != nil {
		form.GeneralProblem = "We couldn't take this review."
		return nil
	}
	data, err := events.ValidateBody(events.KindReview, raw)
	if err == nil {
		return data
	}
	var fe *events.FieldError
	switch {
	case !errors.As(err, &fe):
		form.GeneralProblem = "We couldn't take this review: " + err.Error() + "."
	case reviewFields[fe.Field] != "":
		if _, seen := form.Err[fe.Field]; !seen {
			form.Err[fe.Field] = reviewFields[fe.Field] + " " + fe.Reason + "."
		}
	default:
		k.log.Warn("kiosk: review refused", "field", fe.Field, "reason", fe.Reason)
		form.GeneralProblem = "We couldn't take this review: " + fe.Error() + "."
	}
	return nil
}

// appendFailure turns an outbox error into a status and a polite message.
func (k *Kiosk) appendFailure(err error, what string) (int, string) {
	switch {
	case errors.Is(err, outbox.ErrFull):
		k.log.Warn("kiosk: outbox full", "what", what, "err", err)
		return http.StatusInsufficientStorage, "Sorry, this kiosk can't send your " + what + " right now: its storage is full. Please ask a colleague."
	case errors.Is(err, outbox.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "Sorry, this kiosk is restarting. Please try again in a moment."
	}
	k.log.Error("kiosk: append failed", "what", what, "err", err)
	return http.StatusInternalServerError, "Sorry, something went wrong sending your " + what + ". Please ask a colleague."
}

// postAssist asks staff to bring a variant to a fitting room, once per
// session, zone and variant; or (reason=help) to come and help, with the
// item she is trying (sku) or in the room (no sku), once per view of the
// page.
func (k *Kiosk) postAssist(w http.ResponseWriter, r *http.Request) {
	p, s, ok := k.readForm(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	body := events.Assist{Zone: p.Zone, SKU: strings.TrimSpace(f.Get("sku")), From: strings.TrimSpace(f.Get("from"))}
	key := assistKey(s.ID, p.Zone, body.SKU)
	reason := f.Get("reason")
	if reason == events.AssistHelp {
		// Help with an item names it both as tried and as wanted: there
		// is nothing to fetch.
		body.Reason, body.From = events.AssistHelp, body.SKU
		key = helpKey(s.ID, p.Zone, body.SKU, validView(f.Get("view")))
	}
	raw, _ := json.Marshal(body)
	data, err := events.ValidateBody(events.KindAssist, raw)
	if err != nil || p.Zone == "" || (reason != "" && reason != events.AssistHelp) {
		k.message(w, http.StatusBadRequest, p, s, message{Heading: "We couldn't send that request",
			Detail: "Please ask a colleague at the fitting rooms."})
		return
	}
	if k.o.Outbox == nil {
		k.message(w, http.StatusServiceUnavailable, p, s, message{Heading: "Requests can't be sent from this kiosk",
			Detail: "Please ask a colleague at the fitting rooms."})
		return
	}
	envs, replayed, err := k.o.Outbox.AppendOnce(r.Context(), key, []events.Draft{{Kind: events.KindAssist, Data: data}})
	if err == nil || errors.Is(err, outbox.ErrKeyReused) {
		if len(envs) > 0 {
			k.log.Info("kiosk: assist requested", "event", envs[0].ID, "zone", p.Zone, "sku", body.SKU, "reason", body.Reason, "replayed", replayed)
		}
		v := p.values()
		switch {
		case body.Reason != events.AssistHelp:
			v.Set("asked", body.SKU)
		case body.SKU != "":
			v.Set("helped", body.SKU)
		default:
			v.Set("helped", helpRoom)
		}
		http.Redirect(w, r, withQuery("/kiosk/", v), http.StatusSeeOther)
		return
	}
	status, text := k.appendFailure(err, "request")
	pg := k.newPage(p, s, "start", "Your fitting room")
	if k.o.Present != nil {
		pg.Room = k.room(r.Context(), p, s, nonce())
	}
	pg.Banner = &banner{Kind: "err", Text: text}
	k.render(w, status, pg)
}

// assistKey is the idempotency key of an assist request: printable ASCII,
// whatever the zone is called.
func assistKey(session, zone, sku string) string {
	if events.ValidToken(zone) != nil {
		zone = url.QueryEscape(zone)
	}
	return boundedKey("assist:" + session + ":" + zone + ":" + sku)
}

// helpKey is the idempotency key of a call for help: once per view of the
// page, so a double tap sends one call but a shopper who needs help again
// later (from the page she returned to) is heard again. Its prefix keeps
// it apart from every assistKey.
func helpKey(session, zone, sku, view string) string {
	if events.ValidToken(zone) != nil {
		zone = url.QueryEscape(zone)
	}
	return boundedKey("assist-help:" + session + ":" + zone + ":" + sku + ":" + view)
}

// boundedKey keeps an idempotency key within the outbox's limit: a long
// escaped zone name and SKU could pass it, so such a key is hashed (with
// its prefix, so kinds of keys stay apart).
func boundedKey(key string) string {
	if len(key) <= outbox.MaxKeyLen {
		return key
	}
	prefix, _, _ := strings.Cut(key, ":")
	h := sha256.Sum256([]byte(key))
	return prefix + ":h:" + hex.EncodeToString(h[:])
}

// done ends the shopper's session; on a mirror with a fitting-room survey
// it asks the survey first (its "No thanks" ends the session).
func (k *Kiosk) done(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	_ = r.ParseForm()
	p := placeOf(r.PostForm)
	if err := k.cop.Check(r); err != nil {
		k.message(w, http.StatusForbidden, p, session{}, message{Heading: "This form can't be sent from here"})
		return
	}
	if u := k.surveyAfterDone(r, p); u != "" {
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	endSession(w, r)
	http.Redirect(w, r, p.Home(), http.StatusSeeOther)
}

func (k *Kiosk) newPage(p place, s session, kind, title string) *page {
	pg := &page{Title: title, Page: kind, Place: p, IdleMS: k.o.IdleReturn.Milliseconds(),
		RefreshMS: k.o.RoomRefresh.Milliseconds(), CartOn: k.o.Carts != nil, CartURL: p.cartURL()}
	if s.ID != "" {
		pg.CSRF = k.token(s.ID)
	}
	return pg
}

// message answers an information or error page.
func (k *Kiosk) message(w http.ResponseWriter, status int, p place, s session, m message) {
	pg := k.newPage(p, s, "message", m.Heading)
	pg.Msg, pg.Code = &m, m.Code
	k.render(w, status, pg)
}

// render writes a whole page with its security headers.
func (k *Kiosk) render(w http.ResponseWriter, status int, pg *page) {
	pg.Nonce = nonce()
	pg.CSS, pg.JS = template.CSS(pageCSS), template.JS(pageJS)
	if pg.Title == "" {
		pg.Title = "Product"
	}
	var buf bytes.Buffer
	if err := k.tmpl.ExecuteTemplate(&buf, "page", pg); err != nil {
		k.log.Error("kiosk: render", "page", pg.Page, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	k.securityHeaders(w, pg.Nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// securityHeaders allows only this page's own inline script and style (by
// nonce), images from anywhere (catalog pictures live on a CDN; offline they
// just do not load), and connections and forms to this origin.
func (k *Kiosk) securityHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; "+
		"img-src 'self' https: http: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
