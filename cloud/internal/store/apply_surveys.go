package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/surveys"
	"github.com/omnisync/omnisync/shared/events"
)

// surveysApplier keeps survey answers by the rules of package surveys: one
// answer per (survey, respondent), a complete answer beating a partial
// one, then the later by HLC, whatever the arrival order; and the
// receipts' QR tokens (their hashes) for the phone page. Its gate refuses
// answers to surveys HQ never defined and scores off the survey's scale.
type surveysApplier struct{}

func (surveysApplier) name() string { return "surveys" }

// surveyRead is a survey event as the rules see it.
type surveyRead struct {
	answer surveys.Answer
	// token is the receipt's QR token (empty: none).
	token string
	// counts: the event carries an answer (a score, a comment, or a
	// submission), not only an invitation.
	counts bool
}

// Respondent keys: a receipt is unique within its store, a device session
// within its device; a customer's master id is global.
func receiptRespondent(store, receipt string) string { return "r:" + store + ":" + receipt }

func respondentOf(o events.Origin, b events.Survey) string {
	switch {
	case b.Receipt != "":
		return receiptRespondent(o.Store, b.Receipt)
	case b.CustomerID != "":
		return "c:" + b.CustomerID
	}
	return "s:" + o.Store + ":" + o.Device + ":" + b.Session
}

func (surveysApplier) read(_ *Store, env *events.Envelope) (any, error) {
	if env.Kind != events.KindSurvey {
		return nil, nil
	}
	var b events.Survey
	if err := json.Unmarshal(env.Data, &b); err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	if b.Survey == "" || (b.Receipt == "" && b.CustomerID == "" && b.Session == "") {
		return nil, fmt.Errorf("survey: survey and one of receipt, customer_id or session are required")
	}
	a := surveys.Answer{
		ID: env.ID, Survey: b.Survey, Respondent: respondentOf(env.Origin, b), Store: env.Origin.Store,
		Channel: cmp.Or(b.Channel, "store"), At: time.UnixMilli(env.HLC.Wall).UTC(), HLC: env.HLC,
		Comment: b.Comment, Complete: b.Complete,
	}
	if b.Score != nil {
		a.Score, a.Scored = *b.Score, true
	}
	return &surveyRead{answer: a, token: b.Token, counts: a.Scored || a.Complete || a.Comment != ""}, nil
}

// gate gives each answer its survey's kind, and refuses answers to unknown
// surveys and scores off the scale.
func (sa surveysApplier) gate(ctx context.Context, t *applyTx) error {
	reads := t.readsOf(sa)
	if len(reads) == 0 {
		return nil
	}
	kinds, err := surveyKinds(ctx, t.tx)
	if err != nil {
		return err
	}
	for _, r := range reads {
		sr := r.v.(*surveyRead)
		k, ok := kinds[sr.answer.Survey]
		if !ok {
			t.reject(r.item, fmt.Sprintf("survey %q is not defined at the hub", sr.answer.Survey))
			continue
		}
		sr.answer.Kind = k
		if err := sr.answer.Validate(); err != nil {
			t.reject(r.item, err.Error())
			continue
		}
		if sr.answer.Comment != "" && t.s.custKeys == nil {
			// A comment is kept only sealed; dead-lettered, it can be
			// replayed once the hub has its keys.
			t.reject(r.item, "the hub has no customer data keys to seal the survey comment with")
		}
	}
	return nil
}

func surveyKinds(ctx context.Context, q querier) (map[string]surveys.Kind, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, kind FROM surveys")
	if err != nil {
		return nil, fmt.Errorf("surveys: %w", err)
	}
	defer rows.Close()
	out := map[string]surveys.Kind{}
	for rows.Next() {
		var id, k string
		if err := rows.Scan(&id, &k); err != nil {
			return nil, err
		}
		out[id] = surveys.Kind(k)
	}
	return out, rows.Err()
}

func (surveysApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	var tokens []surveyToken
	var answers []surveys.Answer
	for _, r := range reads {
		sr := r.v.(*surveyRead)
		if sr.token != "" {
			tokens = append(tokens, surveyToken{hash: surveyTokenHash(sr.token), survey: sr.answer.Survey,
				respondent: sr.answer.Respondent, store: sr.answer.Store})
		}
		if sr.counts {
			answers = append(answers, sr.answer)
		}
	}
	if err := t.s.insertSurveyTokens(ctx, t.tx, tokens, t.nowMS); err != nil {
		return err
	}
	return t.s.upsertSurveyAnswers(ctx, t.tx, answers)
}

type surveyToken struct{ hash, survey, respondent, store string }

// surveyTokenHash is what the hub keeps of a receipt's QR token: the token
// has 128 random bits or more, so a plain SHA-256 cannot be reversed.
func surveyTokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (s *Store) insertSurveyTokens(ctx context.Context, db execer, tokens []surveyToken, nowMS int64) error {
	if len(tokens) == 0 {
		return nil
	}
	slices.SortFunc(tokens, func(a, b surveyToken) int { return cmp.Compare(a.hash, b.hash) })
	tokens = slices.CompactFunc(tokens, func(a, b surveyToken) bool { return a.hash == b.hash })
	rs := newRowset(text("hash"), text("survey"), text("respondent"), text("store"))
	for _, tk := range tokens {
		rs.add(tk.hash, tk.survey, tk.respondent, tk.store)
	}
	err := s.execRows(ctx, db, rs, "k", func(a *args, k string) string {
		return `INSERT INTO survey_tokens (hash, survey, respondent, store, created_ms)
SELECT hash, survey, respondent, store, ` + a.add(nowMS) + ` FROM ` + k + s.d.inOrder() + `
ON CONFLICT (hash) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("survey tokens: %w", err)
	}
	return nil
}

// answerStamp orders a respondent's answers as surveys.Supersedes does:
// a complete answer first, then the later by HLC, then the greater id.
type answerStamp struct {
	complete bool
	hlc      int64
	id       string
}

func answerStampOf(a surveys.Answer) answerStamp {
	return answerStamp{complete: a.Complete, hlc: a.HLC.Pack(), id: a.ID}
}

func (s answerStamp) after(o answerStamp) bool {
	if s.complete != o.complete {
		return s.complete
	}
	if s.hlc != o.hlc {
		return s.hlc > o.hlc
	}
	return s.id > o.id
}

// mergedAnswer is a respondent's answers folded into one: the row (store,
// channel, time, completeness) from the best answer, and each part, the
// score and the comment, from the best answer that has it. Every part is a
// maximum over one total order, so the merge is the same whatever order
// the answers arrive in, and a partial answer carrying only a comment does
// not lose the score an earlier one gave.
type mergedAnswer struct {
	row       surveys.Answer
	rowAt     answerStamp
	scored    bool
	score     int
	scoreAt   answerStamp
	comment   string
	commentAt answerStamp
}

func (m *mergedAnswer) add(a surveys.Answer) {
	st := answerStampOf(a)
	if m.row.ID == "" || st.after(m.rowAt) {
		m.row, m.rowAt = a, st
	}
	if a.Scored && (!m.scored || st.after(m.scoreAt)) {
		m.scored, m.score, m.scoreAt = true, a.Score, st
	}
	if a.Comment != "" && (m.comment == "" || st.after(m.commentAt)) {
		m.comment, m.commentAt = a.Comment, st
	}
}

// upsertSurveyAnswers merges answers into the stored answer of each
// (survey, respondent) (mergedAnswer, in SQL for the stored side). Rows
// are written in key order (LOCKS.md).
func (s *Store) upsertSurveyAnswers(ctx context.Context, db execer, answers []surveys.Answer) error {
	if len(answers) == 0 {
		return nil
	}
	type key struct{ survey, respondent string }
	merged := map[key]*mergedAnswer{}
	for _, a := range answers {
		k := key{a.Survey, a.Respondent}
		m := merged[k]
		if m == nil {
			m = &mergedAnswer{}
			merged[k] = m
		}
		m.add(a)
	}
	keys := make([]key, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.survey, b.survey), cmp.Compare(a.respondent, b.respondent))
	})
	rs := newRowset(text("survey"), text("respondent"), text("event_id"), integer("hlc"), integer("complete"), integer("scored"),
		integer("score"), integer("has_comment"), blob("comment_enc"), blob("redacted_enc"), text("store"), text("channel"), integer("at_ms"),
		integer("score_complete"), integer("score_hlc"), text("score_event"), integer("comment_complete"), integer("comment_hlc"), text("comment_event"))
	for _, k := range keys {
		m := merged[k]
		var has int64
		var enc, redEnc []byte
		if m.comment != "" {
			if s.custKeys == nil {
				return fmt.Errorf("survey answers: %w", ErrNoCustomerKeys)
			}
			red, _ := surveys.Redact(m.comment)
			has = 1
			enc, redEnc = s.sealComment(k.survey, k.respondent, m.comment, red)
		}
		rs.add(k.survey, k.respondent, m.row.ID, m.rowAt.hlc, b2i(m.rowAt.complete), b2i(m.scored), int64(m.score), has, enc, redEnc,
			m.row.Store, m.row.Channel, m.row.At.UnixMilli(),
			b2i(m.scoreAt.complete), m.scoreAt.hlc, m.scoreAt.id, b2i(m.commentAt.complete), m.commentAt.hlc, m.commentAt.id)
	}
	// answerStamp.after in SQL, for the row and for each part. Every SET
	// reads the stored row as it was before the statement.
	after := func(p string) string {
		c, h, e := p+"complete", p+"hlc", p+"event_id"
		if p != "" {
			e = p + "event"
		}
		return `(excluded.` + c + ` > survey_answers.` + c + ` OR (excluded.` + c + ` = survey_answers.` + c + ` AND (excluded.` + h + ` > survey_answers.` + h +
			` OR (excluded.` + h + ` = survey_answers.` + h + ` AND excluded.` + e + ` > survey_answers.` + e + `))))`
	}
	row := after("")
	score := `(excluded.scored = 1 AND (survey_answers.scored = 0 OR ` + after("score_") + `))`
	// An erased customer's comment never comes back, whatever arrives.
	comment := `(excluded.has_comment = 1 AND survey_answers.comment_erased = 0 AND (survey_answers.has_comment = 0 OR ` + after("comment_") + `))`
	pick := func(cond string, cols ...string) string {
		var b strings.Builder
		for _, c := range cols {
			fmt.Fprintf(&b, ",\n\t%s = CASE WHEN %s THEN excluded.%s ELSE survey_answers.%s END", c, cond, c, c)
		}
		return b.String()
	}
	set := strings.TrimPrefix(pick(row, "event_id", "hlc", "complete", "store", "channel", "at_ms")+
		pick(score, "score_complete", "score_hlc", "score_event", "score", "scored")+
		pick(comment, "comment_complete", "comment_hlc", "comment_event", "has_comment", "comment_enc", "redacted_enc", "comment", "redacted"), ",")
	err := s.execRows(ctx, db, rs, "a", func(_ *args, a string) string {
		return `INSERT INTO survey_answers (survey, respondent, event_id, hlc, complete, scored, score, has_comment, comment_enc, redacted_enc, comment, redacted,
	store, channel, at_ms, score_complete, score_hlc, score_event, comment_complete, comment_hlc, comment_event)
SELECT survey, respondent, event_id, hlc, complete, scored, score, has_comment, comment_enc, redacted_enc, '', '',
	store, channel, at_ms, score_complete, score_hlc, score_event, comment_complete, comment_hlc, comment_event FROM ` + a + s.d.inOrder() + `
ON CONFLICT (survey, respondent) DO UPDATE SET` + set
	})
	if err != nil {
		return fmt.Errorf("survey answers: %w", err)
	}
	return nil
}
