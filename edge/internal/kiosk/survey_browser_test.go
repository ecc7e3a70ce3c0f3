package kiosk

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/edge/internal/storecart"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// hqSurveys are the definitions the down-sync would have brought.
func hqSurveys(offer string) (downsync.SurveyDoc, bool) {
	switch offer {
	case downsync.OfferPostPurchase:
		return downsync.SurveyDoc{ID: "post-purchase", Kind: "nps", Question: "How likely are you to recommend us to a friend?",
			Offer: offer, Active: true, Version: 1}, true
	case downsync.OfferFittingRoom:
		return downsync.SurveyDoc{ID: "fitting-csat", Kind: "csat", Question: "How was your fitting room visit?",
			CommentPrompt: "What could we do better?", Offer: offer, Active: true, Version: 1}, true
	}
	return downsync.SurveyDoc{}, false
}

// Ensure that a shopper whose kiosk cart is checked out at the till sees
// the post-purchase survey on the kiosk without a touch, that her score is
// recorded at once as a partial answer and her comment with the complete
// one, both about the receipt; and that on a fitting-room mirror "Done"
// asks the fitting-room survey about the visit, whose "Skip" completes it
// without a comment. Every answer is a survey event in the outbox, the
// way it travels offline.
func TestKioskSurveysInBrowser(t *testing.T) {
	var sc *storecart.Carts
	testkit.Chromium(t)
	r := newRig(t, 0, func(o *Options) {
		sc = storecart.New(storecart.Options{Store: testStore, Device: testDevice, Outbox: o.Outbox})
		o.Carts, o.Surveys, o.RoomRefresh = sc, hqSurveys, 300*time.Millisecond // the cart screen watches the till this often
	}, nil)
	b := &browserRig{rig: r, ctx: testkit.Browser(t)}
	sc.Register(b.srv.Config.Handler.(*http.ServeMux))

	b.do(t, "add a tee", chromedp.Navigate(b.srv.URL+"/kiosk/p/TEE-M-BLU"), chromedp.WaitVisible("#add-to-cart"),
		chromedp.Click("#add-to-cart"), chromedp.WaitVisible(`section.cart[data-watch] #cart-lines`))
	id := outboxEvents[events.LineSet](t, b.ob, events.KindLineSet)[0].CartID
	// The till checks the cart out (its QR scanned); the kiosk's cart
	// screen notices and turns into the survey.
	c, err := sc.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Checkout(t.Context(), c, nil); err != nil {
		t.Fatal(err)
	}
	b.do(t, "the survey comes up", chromedp.WaitVisible(`section.survey[data-survey="post-purchase"] #score-9`))
	if q := b.text(t, "#question"); !strings.Contains(q, "recommend us") {
		t.Fatalf("question %q", q)
	}
	b.do(t, "score 9", chromedp.Click("#score-9"), chromedp.WaitVisible("#comment"))
	answers := outboxEvents[events.Survey](t, b.ob, events.KindSurvey)
	order := storecart.OrderID(id)
	if len(answers) != 1 || answers[0].Receipt != order || answers[0].Complete || *answers[0].Score != 9 || answers[0].Channel != "kiosk" {
		t.Fatalf("after the score: %+v", answers)
	}
	b.do(t, "a comment, sent", chromedp.SendKeys("#comment", "Quick and friendly"), chromedp.Click("#survey-send"),
		chromedp.WaitVisible("#banner"))
	if got := b.text(t, "#banner"); got != thanksText {
		t.Fatalf("banner %q", got)
	}
	answers = outboxEvents[events.Survey](t, b.ob, events.KindSurvey)
	if len(answers) != 2 || answers[1].Receipt != order || !answers[1].Complete || *answers[1].Score != 9 || answers[1].Comment != "Quick and friendly" {
		t.Fatalf("complete answer: %+v", answers)
	}
	// The session ended with the answer: the next shopper's cart is empty.
	b.do(t, "the next shopper", chromedp.Navigate(b.srv.URL+"/kiosk/cart"), chromedp.WaitVisible("#cart-empty"))

	b.do(t, "the mirror's Done asks about the visit", chromedp.Navigate(b.srv.URL+"/kiosk/?zone="+testZone), chromedp.WaitVisible("#room"),
		testkit.Click("#done"), chromedp.WaitVisible(`section.survey[data-survey="fitting-csat"] #score-5`))
	if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(".scale button").length`)); err != nil || n != 5 {
		t.Fatalf("CSAT scale of %d points: %v", n, err)
	}
	b.do(t, "score 4, no comment", chromedp.Click("#score-4"), chromedp.WaitVisible("#survey-skip"),
		chromedp.Click("#survey-skip"), chromedp.WaitVisible("#banner"))
	if loc := b.location(t); !strings.HasPrefix(loc, "/kiosk/?") || !strings.Contains(loc, "zone="+testZone) {
		t.Fatalf("back at %q", loc)
	}
	answers = outboxEvents[events.Survey](t, b.ob, events.KindSurvey)
	if len(answers) != 4 {
		t.Fatalf("answers %+v", answers)
	}
	visit := answers[2:]
	if visit[0].Session == "" || visit[1].Session != visit[0].Session || visit[0].Channel != "fitting_room" || visit[0].Complete ||
		!visit[1].Complete || *visit[1].Score != 4 || visit[1].Comment != "" || visit[1].Survey != "fitting-csat" {
		t.Fatalf("visit answers %+v", visit)
	}
	// Done again on the fresh session's mirror, "No thanks": home.
	b.do(t, "no thanks", testkit.Click("#done"), chromedp.WaitVisible("#survey-no"), chromedp.Click("#survey-no"), chromedp.WaitVisible("#room"))
	if n := len(outboxEvents[events.Survey](t, b.ob, events.KindSurvey)); n != 4 {
		t.Fatalf("No thanks sent %d answers", n-4)
	}
}
