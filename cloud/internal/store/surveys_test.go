package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/surveys"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

func score(n int) *int { return &n }

// Ensure that one answer per receipt counts, whatever the order and
// duplication of the partial and complete answers, that answers to
// unknown surveys or off the scale are dead-lettered, and that comments
// are redacted except on request.
func TestSurveys_OneAnswerPerReceipt(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "post-purchase", Kind: surveys.NPS, Question: "Would you recommend us?", Active: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "post-purchase", Kind: surveys.CSAT, Question: "x"}); !errors.Is(err, ErrSurveyKind) {
			t.Fatalf("kind change: %v", err)
		}
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "bad id", Kind: surveys.NPS, Question: "x"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad id: %v", err)
		}
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "elsewhere", Kind: surveys.NPS, Question: "x", Offer: "checkout"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown offer: %v", err)
		}
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "room", Kind: surveys.CSAT, Question: "Your visit?", Offer: downsync.OfferFittingRoom, Active: true}); err != nil {
			t.Fatal(err)
		}
		if d, err := s.Survey(ctx, "room"); err != nil || d.Doc().Offer != downsync.OfferFittingRoom || d.Doc().Version != d.UpdatedMS || !d.Doc().Active {
			t.Fatalf("offer kept: %+v %v", d, err)
		}
		k := newDevice("S1", "kiosk-1", 1)
		partial := k.ev(1000, events.KindSurvey, events.Survey{Survey: "post-purchase", Receipt: "R-1", Channel: "kiosk", Score: score(3)})
		complete := k.ev(2000, events.KindSurvey, events.Survey{Survey: "post-purchase", Receipt: "R-1", Channel: "kiosk", Score: score(10), Complete: true,
			Comment: "Great, mail me at anna@example.com"})
		laterPartial := k.ev(3000, events.KindSurvey, events.Survey{Survey: "post-purchase", Receipt: "R-1", Channel: "kiosk", Score: score(1)})
		other := k.ev(3500, events.KindSurvey, events.Survey{Survey: "post-purchase", Receipt: "R-2", Channel: "kiosk", Score: score(5)})
		unknown := k.ev(4000, events.KindSurvey, events.Survey{Survey: "nope", Receipt: "R-3", Score: score(5)})
		// Out of order: the complete answer arrives last, in its own batch,
		// and the batch before is replayed.
		apply(t, s, laterPartial, partial, other, unknown)
		res := apply(t, s, complete, laterPartial)
		if res.Applied != 1 || res.Duplicates != 1 {
			t.Fatalf("second batch: %+v", res)
		}
		as, err := s.SurveyAnswers(ctx, "post-purchase", time.Time{}, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 2 {
			t.Fatalf("answers %+v", as)
		}
		var r1 surveys.Answer
		for _, a := range as {
			if a.Score == 10 || a.Score == 1 || a.Score == 3 {
				r1 = a
			}
			if a.Respondent != "" {
				t.Errorf("respondent shown: %q", a.Respondent)
			}
		}
		if !r1.Complete || r1.Score != 10 || r1.Comment != "Great, mail me at [email]" || r1.Store != "S1" || r1.Channel != "kiosk" {
			t.Errorf("kept %+v", r1)
		}
		raw, _ := s.SurveyAnswers(ctx, "post-purchase", time.Time{}, true)
		if !strings.Contains(raw[0].Comment+raw[1].Comment, "anna@example.com") {
			t.Errorf("raw comments %+v", raw)
		}
		dls, _ := s.DeadLetters(ctx, "", 10)
		if len(dls) != 1 || !strings.Contains(dls[0].Reason, `survey "nope" is not defined`) {
			t.Errorf("dead letters %+v", dls)
		}
		res = apply(t, s, k.ev(5000, events.KindSurvey, events.Survey{Survey: "post-purchase", Receipt: "R-4", Score: score(10)}))
		if res.DeadLettered != 0 {
			t.Errorf("NPS 10 refused")
		}
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "effort", Kind: surveys.CES, Question: "How easy?"}); err != nil {
			t.Fatal(err)
		}
		res = apply(t, s, k.ev(6000, events.KindSurvey, events.Survey{Survey: "effort", Session: "v1", Score: score(9)}))
		if res.DeadLettered != 1 {
			t.Errorf("CES 9 accepted: %+v", res)
		}
	})
}

// Ensure that a receipt's QR token opens its survey once the till's
// invitation arrived, and that the phone's answer follows the same rule.
func TestSurveys_Token(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "csat", Kind: surveys.CSAT, Question: "Happy?", Active: true}); err != nil {
			t.Fatal(err)
		}
		tok := "tok_4f9c2a7d1e8b3c6a5d0f9e2b"
		if _, err := s.SurveyByToken(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Fatalf("before the invitation: %v", err)
		}
		pos := newDevice("S2", "pos-1", 7)
		res := apply(t, s, pos.ev(1000, events.KindSurvey, events.Survey{Survey: "csat", Receipt: "R-9", Token: tok, Channel: "receipt_qr"}))
		if res.Applied != 1 {
			t.Fatalf("%+v", res)
		}
		inv, err := s.SurveyByToken(ctx, tok)
		if err != nil || inv.Survey.ID != "csat" {
			t.Fatalf("%+v %v", inv, err)
		}
		if as, _ := s.SurveyAnswers(ctx, "csat", time.Time{}, false); len(as) != 0 {
			t.Fatalf("an invitation counted as an answer: %+v", as)
		}
		if err := s.AnswerByToken(ctx, tok, 9, "", true); !errors.Is(err, ErrInvalid) {
			t.Fatalf("CSAT 9: %v", err)
		}
		if err := s.AnswerByToken(ctx, tok, 2, "", false); err != nil {
			t.Fatal(err)
		}
		if err := s.AnswerByToken(ctx, tok, 5, "call 06 12 34 56 78", true); err != nil {
			t.Fatal(err)
		}
		if err := s.AnswerByToken(ctx, tok, 1, "", false); err != nil { // a partial after submitting changes nothing
			t.Fatal(err)
		}
		as, _ := s.SurveyAnswers(ctx, "csat", time.Time{}, false)
		if len(as) != 1 || as[0].Score != 5 || !as[0].Complete || as[0].Store != "S2" || as[0].Comment != "call [phone]" {
			t.Fatalf("%+v", as)
		}
		if _, err := s.SurveyByToken(ctx, "tok_unknown_but_long_enough_0000"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
	})
}

// Ensure that a respondent's stored answer is the merge of all their
// answers (the row from the best, the score and the comment each from the
// best answer carrying one), whatever the order, batching and duplication
// of the events: compared with mergedAnswer folded over every answer.
func TestSurveys_MergeProperty(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "nps", Kind: surveys.NPS, Question: "?"}); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		for round := range 4 {
			k := newDevice("S1", fmt.Sprint("kiosk-", round), uint64(round+1))
			var envs []events.Envelope
			for i := range 40 {
				b := events.Survey{Survey: "nps", Receipt: fmt.Sprintf("R%d-%d", round, rng.IntN(4)), Channel: "kiosk"}
				if rng.IntN(3) > 0 {
					b.Score = score(rng.IntN(11))
					b.Complete = rng.IntN(4) == 0
				}
				if rng.IntN(2) == 0 || b.Score == nil {
					b.Comment = fmt.Sprint("comment ", i)
				}
				envs = append(envs, k.ev(int64(1000+rng.IntN(50)), events.KindSurvey, b))
			}
			// The oracle: every answer folded, as the kiosk sent them.
			want := map[string]*mergedAnswer{}
			for _, e := range envs {
				v, err := surveysApplier{}.read(s, &e)
				if err != nil {
					t.Fatal(err)
				}
				a := v.(*surveyRead).answer
				if want[a.Respondent] == nil {
					want[a.Respondent] = &mergedAnswer{}
				}
				want[a.Respondent].add(a)
			}
			shuffled := slices.Clone(envs)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			shuffled = append(shuffled, shuffled[:10]...)
			for len(shuffled) > 0 {
				n := min(len(shuffled), 1+rng.IntN(12))
				apply(t, s, shuffled[:n]...)
				shuffled = shuffled[n:]
			}
			got, err := s.SurveyAnswers(ctx, "nps", time.Time{}, true)
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, a := range got {
				m := want[a.Respondent]
				if m == nil {
					continue
				}
				seen++
				if a.ID != m.row.ID || a.Complete != m.rowAt.complete || a.Scored != m.scored || a.Score != m.score || a.Comment != m.comment {
					t.Errorf("round %d %s: got %+v, want row %s complete %v score %v/%d comment %q", round, a.Respondent, a,
						m.row.ID, m.rowAt.complete, m.scored, m.score, m.comment)
				}
			}
			if seen != len(want) {
				t.Errorf("round %d: %d respondents stored, want %d", round, seen, len(want))
			}
		}
	})
}

// Ensure that survey comments are sealed at rest: neither the columns nor
// (on SQLite) the database files hold the text, which still reads back
// redacted or, for a moderator, whole; that comments are refused without
// customer keys (dead-lettered, nothing kept); and that erasing a customer
// scrubs the comments they gave, as themselves or about their receipts,
// for good, while scores stay.
func TestSurveys_CommentsSealed(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "nps", Kind: surveys.NPS, Question: "Recommend us?", Active: true}); err != nil {
			t.Fatal(err)
		}
		k := newDevice("S1", "kiosk-1", 1)
		secret := "Zebulon Quagmire at zq@example.com"
		res := apply(t, s, k.ev(900, events.KindSurvey, events.Survey{Survey: "nps", Session: "v0", Score: score(9), Comment: "no keys yet"}))
		if res.DeadLettered != 1 {
			t.Fatalf("a comment kept without keys: %+v", res)
		}
		withKeys(s)
		pos := newDevice("S1", "pos-1", 1)
		apply(t, s,
			pos.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-9"})),
			pos.ev(1100, events.KindSale, func() events.StockMove {
				m := saleBy("S1", map[string]string{"loyalty": "LC-9"}, line("A", 1))
				m.OrderID = "R-77"
				return m
			}()),
			k.ev(1200, events.KindSurvey, events.Survey{Survey: "nps", Receipt: "R-77", Score: score(9), Complete: true, Comment: secret}),
			k.ev(1300, events.KindSurvey, events.Survey{Survey: "nps", Receipt: "R-78", Score: score(3), Comment: "Quagmire again, 0612345678"}),
		)
		cust := find(t, s, "loyalty:LC-9")
		apply(t, s, k.ev(1400, events.KindSurvey, events.Survey{Survey: "nps", CustomerID: cust, Score: score(8), Comment: "Quagmire as myself"}),
			pos.ev(1410, events.KindIdentify, identify(map[string]string{"email": "zq@shop.test"})))
		// Another customer answers, then turns out to be the same person.
		other := find(t, s, "email:zq@shop.test")
		apply(t, s, k.ev(1420, events.KindSurvey, events.Survey{Survey: "nps", CustomerID: other, Score: score(6), Comment: "Quagmire by mail"}),
			pos.ev(1430, events.KindIdentify, identify(map[string]string{"email": "zq@shop.test", "loyalty": "LC-9"})))
		if find(t, s, "email:zq@shop.test") != find(t, s, "loyalty:LC-9") {
			t.Fatal("not merged")
		}
		cust = find(t, s, "loyalty:LC-9")

		rows, err := s.r.QueryContext(ctx, "SELECT comment, redacted, comment_enc, redacted_enc FROM survey_answers")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var c, r string
			var ce, re []byte
			if err := rows.Scan(&c, &r, &ce, &re); err != nil {
				t.Fatal(err)
			}
			n++
			if c != "" || r != "" || len(ce) == 0 || len(re) == 0 {
				t.Errorf("row in clear: %q %q, sealed %d/%d bytes", c, r, len(ce), len(re))
			}
			for _, b := range [][]byte{ce, re, []byte(c), []byte(r)} {
				if strings.Contains(string(b), "Quagmire") {
					t.Errorf("comment text at rest: %q", b)
				}
			}
		}
		rows.Close()
		if n != 4 {
			t.Fatalf("%d answers stored", n)
		}
		if s.d.pg() {
			var hits int
			if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM survey_answers a WHERE a::text LIKE '%Quagmire%'").Scan(&hits); err != nil || hits != 0 {
				t.Fatalf("rows holding the text: %d %v", hits, err)
			}
		} else {
			var path string
			if err := s.r.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{path, path + "-wal"} {
				if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("Quagmire")) {
					t.Errorf("%s holds the comment's text", filepath.Base(f))
				}
			}
		}

		comments := func(raw bool) map[string]string {
			t.Helper()
			as, err := s.SurveyAnswers(ctx, "nps", time.Time{}, raw)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, a := range as {
				out[fmt.Sprint(a.Score)] = a.Comment
			}
			return out
		}
		if got := comments(false); got["9"] != "Zebulon Quagmire at [email]" || got["3"] != "Quagmire again, [phone]" {
			t.Fatalf("redacted: %q", got)
		}
		if got := comments(true); got["9"] != secret || got["8"] != "Quagmire as myself" {
			t.Fatalf("raw: %q", got)
		}
		if n, err := s.RekeyCustomers(ctx, 10); err != nil || n != 0 {
			t.Fatalf("rekey with nothing stale: %d %v", n, err)
		}

		if _, err := s.EraseCustomer(ctx, cust, "hq-dpo", ""); err != nil {
			t.Fatal(err)
		}
		// A kiosk that was offline sends the receipt's comment again.
		apply(t, s, k.ev(1500, events.KindSurvey, events.Survey{Survey: "nps", Receipt: "R-77", Score: score(9), Complete: true, Comment: "Zebulon again"}))
		got := comments(true)
		if got["9"] != "" || got["8"] != "" || got["6"] != "" || got["3"] != "Quagmire again, 0612345678" || len(got) != 4 {
			t.Fatalf("after the erasure: %q", got)
		}
	})
}

// Ensure that comments an older hub wrote in clear are sealed at start
// (SealInClear) and read the same after, and that a key rotation
// re-seals comments and webhook secrets.
func TestSurveys_SealLegacyComments(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		f := pii.Generate()
		k1, _ := pii.New(f)
		s.SetCustomerKeys(k1)
		ctx := context.Background()
		if _, err := s.PutSurvey(ctx, SurveyDef{ID: "nps", Kind: surveys.NPS, Question: "?"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.w.ExecContext(ctx, `INSERT INTO survey_answers (survey, respondent, event_id, hlc, complete, scored, score, comment, redacted, store, channel, at_ms, has_comment)
VALUES ('nps', 'r:S1:R-1', 'e1', 1, 1, 1, 9, 'mail ann@example.com', 'mail [email]', 'S1', 'kiosk', 1000, 1)`); err != nil {
			t.Fatal(err)
		}
		if as, _ := s.SurveyAnswers(ctx, "nps", time.Time{}, false); len(as) != 1 || as[0].Comment != "mail [email]" {
			t.Fatalf("before sealing: %+v", as)
		}
		if n, err := s.SealInClear(ctx); n != 1 || err != nil {
			t.Fatalf("sealed %d: %v", n, err)
		}
		if n, err := s.SealInClear(ctx); n != 0 || err != nil {
			t.Fatalf("sealed again %d: %v", n, err)
		}
		var c string
		if err := s.r.QueryRowContext(ctx, "SELECT comment || redacted FROM survey_answers").Scan(&c); err != nil || c != "" {
			t.Fatalf("left in clear: %q %v", c, err)
		}
		raw, _ := s.SurveyAnswers(ctx, "nps", time.Time{}, true)
		red, _ := s.SurveyAnswers(ctx, "nps", time.Time{}, false)
		if len(raw) != 1 || raw[0].Comment != "mail ann@example.com" || red[0].Comment != "mail [email]" {
			t.Fatalf("after sealing: %+v %+v", raw, red)
		}

		// A rotation re-seals the comment's two copies and a webhook
		// secret, after which the old key can go.
		if err := s.PutRule(ctx, automation.Rule{ID: "carts", Enabled: true, Trigger: automation.CartAbandoned, Purpose: consent.MarketingEmail,
			Action: automation.Action{Kind: automation.ActionWebhook, URL: "https://crm.example/h", Secret: "whsec_0123456789abcdef"}}); err != nil {
			t.Fatal(err)
		}
		f.AddSealKey()
		k2, _ := pii.New(f)
		s.SetCustomerKeys(k2)
		if n, err := s.RekeyCustomers(ctx, 10); err != nil || n != 3 {
			t.Fatalf("rekeyed %d: %v", n, err)
		}
		if err := f.DropSealKey(1); err != nil {
			t.Fatal(err)
		}
		k3, _ := pii.New(f)
		s.SetCustomerKeys(k3)
		raw, _ = s.SurveyAnswers(ctx, "nps", time.Time{}, true)
		rules, err := s.Rules(ctx)
		if len(raw) != 1 || raw[0].Comment != "mail ann@example.com" || err != nil || rules[0].Action.Secret != "whsec_0123456789abcdef" {
			t.Fatalf("after the rotation: %+v %+v %v", raw, rules, err)
		}
	})
}
