package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnisync/omnisync/cloud/internal/surveys"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// SurveyDef is a survey HQ defined: its scale and the question asked.
type SurveyDef struct {
	ID   string       `json:"id"`
	Kind surveys.Kind `json:"kind"`
	// Question is asked with the scale; CommentPrompt (optional) invites
	// a free-text comment.
	Question      string `json:"question"`
	CommentPrompt string `json:"comment_prompt,omitempty"`
	// Offer is where stores offer it: downsync.OfferPostPurchase (the
	// kiosk after a checkout), downsync.OfferFittingRoom (the mirror at
	// the end of a visit), or empty (not at stores; a receipt's QR still
	// opens it). Active surveys with an offer go to the stores.
	Offer     string `json:"offer,omitempty"`
	Active    bool   `json:"active"`
	CreatedMS int64  `json:"created_ms"`
	UpdatedMS int64  `json:"updated_ms"`
}

// Validate reports what makes d impossible to store, wrapping ErrInvalid.
func (d SurveyDef) Validate() error {
	if err := events.ValidToken(d.ID); err != nil || len(d.ID) > 64 {
		return fmt.Errorf("%w: survey id must be 1 to 64 letters, digits, '-' or '_'", ErrInvalid)
	}
	if _, _, ok := d.Kind.Scale(); !ok {
		return fmt.Errorf("%w: survey kind %q (one of nps, csat, ces)", ErrInvalid, d.Kind)
	}
	if strings.TrimSpace(d.Question) == "" || utf8.RuneCountInString(d.Question) > 300 || !utf8.ValidString(d.Question) {
		return fmt.Errorf("%w: question must be 1 to 300 characters", ErrInvalid)
	}
	if utf8.RuneCountInString(d.CommentPrompt) > 300 || !utf8.ValidString(d.CommentPrompt) {
		return fmt.Errorf("%w: comment_prompt must be at most 300 characters", ErrInvalid)
	}
	switch d.Offer {
	case "", downsync.OfferPostPurchase, downsync.OfferFittingRoom:
	default:
		return fmt.Errorf("%w: offer %q (empty, %s or %s)", ErrInvalid, d.Offer, downsync.OfferPostPurchase, downsync.OfferFittingRoom)
	}
	return nil
}

// ErrSurveyKind is returned when a survey already answered would change
// scale: its answers would no longer mean the same.
var ErrSurveyKind = errors.New("store: a survey's kind cannot change")

// PutSurvey creates or updates a survey definition. The kind of an
// existing survey cannot change (ErrSurveyKind).
func (s *Store) PutSurvey(ctx context.Context, d SurveyDef) (SurveyDef, error) {
	if err := d.Validate(); err != nil {
		return d, err
	}
	now := s.now().UnixMilli()
	err := s.retry(ctx, "put survey", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var kind string
		var created int64
		err = tx.QueryRowContext(ctx, "SELECT kind, created_ms FROM surveys WHERE id = $1", d.ID).Scan(&kind, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			d.CreatedMS = now
		case err != nil:
			return err
		case kind != string(d.Kind):
			return fmt.Errorf("%w: %s is %s", ErrSurveyKind, d.ID, kind)
		default:
			d.CreatedMS = created
		}
		d.UpdatedMS = now
		if _, err := tx.ExecContext(ctx, `INSERT INTO surveys (id, kind, question, comment_prompt, offer, active, created_ms, updated_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET question = excluded.question, comment_prompt = excluded.comment_prompt, offer = excluded.offer,
	active = excluded.active, updated_ms = excluded.updated_ms`,
			d.ID, string(d.Kind), d.Question, d.CommentPrompt, d.Offer, b2i(d.Active), d.CreatedMS, d.UpdatedMS); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil && !errors.Is(err, ErrSurveyKind) {
		err = fmt.Errorf("store: put survey: %w", err)
	}
	return d, err
}

// Surveys lists the survey definitions by id.
func (s *Store) Surveys(ctx context.Context) ([]SurveyDef, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, kind, question, comment_prompt, offer, active, created_ms, updated_ms FROM surveys ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("store: surveys: %w", err)
	}
	defer rows.Close()
	var out []SurveyDef
	for rows.Next() {
		var d SurveyDef
		var kind string
		var active int64
		if err := rows.Scan(&d.ID, &kind, &d.Question, &d.CommentPrompt, &d.Offer, &active, &d.CreatedMS, &d.UpdatedMS); err != nil {
			return nil, err
		}
		d.Kind, d.Active = surveys.Kind(kind), active != 0
		out = append(out, d)
	}
	return out, rows.Err()
}

// Doc is d as the stores read it (downsync.SurveyKey).
func (d SurveyDef) Doc() downsync.SurveyDoc {
	return downsync.SurveyDoc{ID: d.ID, Kind: string(d.Kind), Question: d.Question, CommentPrompt: d.CommentPrompt,
		Offer: d.Offer, Active: d.Active, Version: d.UpdatedMS}
}

// Survey returns one survey definition, or ErrNotFound.
func (s *Store) Survey(ctx context.Context, id string) (SurveyDef, error) {
	all, err := s.Surveys(ctx)
	if err != nil {
		return SurveyDef{}, err
	}
	for _, d := range all {
		if d.ID == id {
			return d, nil
		}
	}
	return SurveyDef{}, fmt.Errorf("%w: survey %q", ErrNotFound, id)
}

// SurveyAnswers returns the kept answer of every respondent of survey
// answered at or after since (zero: all), for surveys.Aggregate. Comments
// come redacted (surveys.Redact) unless raw is set, which only a
// moderator's request may ask for.
func (s *Store) SurveyAnswers(ctx context.Context, survey string, since time.Time, raw bool) ([]surveys.Answer, error) {
	col, plain := "redacted_enc", "redacted"
	if raw {
		col, plain = "comment_enc", "comment"
	}
	rows, err := s.r.QueryContext(ctx, `SELECT a.respondent, a.event_id, a.hlc, a.complete, a.scored, a.score, a.has_comment, a.`+col+`, a.`+plain+`,
	a.store, a.channel, a.at_ms, d.kind
FROM survey_answers a JOIN surveys d ON d.id = a.survey WHERE a.survey = $1 AND a.at_ms >= $2 ORDER BY a.at_ms, a.respondent`,
		survey, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: survey answers: %w", err)
	}
	defer rows.Close()
	var out []surveys.Answer
	for rows.Next() {
		a := surveys.Answer{Survey: survey}
		var h, complete, scored, score, has, at int64
		var kind, legacy string
		var enc []byte
		if err := rows.Scan(&a.Respondent, &a.ID, &h, &complete, &scored, &score, &has, &enc, &legacy, &a.Store, &a.Channel, &at, &kind); err != nil {
			return nil, err
		}
		a.HLC, a.Complete, a.Scored, a.Score, a.At, a.Kind = hlc.Unpack(h), complete != 0, scored != 0, int(score), time.UnixMilli(at).UTC(), surveys.Kind(kind)
		switch {
		case has == 0:
		case len(enc) > 0:
			if s.custKeys == nil {
				return nil, fmt.Errorf("store: survey comments: %w", ErrNoCustomerKeys)
			}
			if a.Comment, err = s.custKeys.OpenString(enc, commentAD(col, survey, a.Respondent)); err != nil {
				return nil, fmt.Errorf("store: survey comment: %w", err)
			}
		default:
			// Written before comments were sealed, and not sealed yet
			// (SealInClear).
			a.Comment = legacy
		}
		if !raw {
			// A respondent key names a receipt or a customer: not for
			// analysts' eyes either.
			a.Respondent = ""
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// commentAD is the additional data a survey comment column's value is
// sealed with: the column and the row's key, so a moderator's text moved
// into the redacted column does not open.
func commentAD(col, survey, respondent string) string {
	return sealAD("survey_answers."+col, survey, respondent)
}

// sealComment seals a comment and its redacted copy for the row (survey,
// respondent). The store must have customer keys.
func (s *Store) sealComment(survey, respondent, comment, redacted string) (enc, redEnc []byte) {
	return s.custKeys.SealString(comment, commentAD("comment_enc", survey, respondent)),
		s.custKeys.SealString(redacted, commentAD("redacted_enc", survey, respondent))
}

// SealInClear seals what older hubs kept in clear and is now sealed with
// the customer keys, survey comments and webhook secrets, and returns how
// many values it sealed. The hub runs it at start, once it has its
// customer keys; with nothing left in clear it costs two scans.
func (s *Store) SealInClear(ctx context.Context) (int, error) {
	if s.custKeys == nil {
		return 0, ErrNoCustomerKeys
	}
	n, err := s.sealSurveyComments(ctx)
	if err != nil {
		return n, err
	}
	m, err := s.sealRuleSecrets(ctx)
	if err != nil {
		return n + m, fmt.Errorf("store: seal rule secrets: %w", err)
	}
	return n + m, nil
}

// sealSurveyComments seals the survey comments written in clear before
// comments were sealed, and returns how many it sealed.
func (s *Store) sealSurveyComments(ctx context.Context) (int, error) {
	n := 0
	err := s.retry(ctx, "seal survey comments", func() error {
		n = 0
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, `SELECT survey, respondent, comment, redacted FROM survey_answers WHERE comment <> '' OR redacted <> '' ORDER BY survey, respondent`)
		if err != nil {
			return err
		}
		type row struct{ survey, respondent, comment, redacted string }
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.survey, &r.respondent, &r.comment, &r.redacted); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range todo {
			if r.redacted == "" {
				r.redacted, _ = surveys.Redact(r.comment)
			}
			enc, redEnc := s.sealComment(r.survey, r.respondent, r.comment, r.redacted)
			if _, err := tx.ExecContext(ctx, `UPDATE survey_answers SET comment_enc = $1, redacted_enc = $2, has_comment = 1, comment = '', redacted = ''
WHERE survey = $3 AND respondent = $4`, enc, redEnc, r.survey, r.respondent); err != nil {
				return err
			}
		}
		n = len(todo)
		return tx.Commit()
	})
	if err != nil {
		return n, fmt.Errorf("store: seal survey comments: %w", err)
	}
	return n, nil
}

// eraseSurveyComments scrubs the survey comments of an erased customer,
// in the erasure's transaction: the answers they gave as themselves
// (respondent "c:" + their master id, or any master id that resolves to
// them: the ids of customers merged into them) and about their receipts
// (the orders of their purchases, before those are deleted). Scores stay, as
// sales do: anonymous numbers. comment_erased keeps any comment arriving
// later (an offline kiosk syncing) out.
func (s *Store) eraseSurveyComments(ctx context.Context, tx *sql.Tx, customer string, digests []string) error {
	resp := []string{"c:" + customer}
	if len(digests) > 0 {
		ds := newRowset(text("digest"))
		for _, d := range sortedUnique(digests) {
			ds.add(d)
		}
		masters, err := s.mastersAnchoredOn(ctx, tx, digests)
		if err != nil {
			return fmt.Errorf("erasure: survey respondents: %w", err)
		}
		for _, m := range masters {
			resp = append(resp, "c:"+m)
		}
		for _, q := range []string{
			`SELECT 'r', p.store, p.order_id FROM cust_purchases p JOIN %s ON p.subject = r.digest WHERE p.order_id <> ''`,
		} {
			err := s.queryRows(ctx, tx, ds, "r", func(a *args, r string) string { return fmt.Sprintf(q, r) }, func(rows *sql.Rows) error {
				var kind, st, id string
				if err := rows.Scan(&kind, &st, &id); err != nil {
					return err
				}
				if kind == "c" {
					resp = append(resp, "c:"+id)
				} else {
					resp = append(resp, receiptRespondent(st, id))
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("erasure: survey respondents: %w", err)
			}
		}
	}
	rs := newRowset(text("k"))
	for _, r := range sortedUnique(resp) {
		rs.add(r)
	}
	err := s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `UPDATE survey_answers SET has_comment = 0, comment_erased = 1, comment_enc = NULL, redacted_enc = NULL, comment = '', redacted = ''
WHERE respondent IN (SELECT k FROM ` + r + `)`
	})
	if err != nil {
		return fmt.Errorf("erasure: survey comments: %w", err)
	}
	return nil
}

// SurveyInvite is what a receipt's QR token opens: the survey to answer
// and the respondent the answer belongs to.
type SurveyInvite struct {
	Survey     SurveyDef
	respondent string
	store      string
}

// SurveyByToken returns the survey a receipt's QR token opens, or
// ErrNotFound (an unknown token, or one whose till's invitation has not
// reached the hub yet).
func (s *Store) SurveyByToken(ctx context.Context, token string) (SurveyInvite, error) {
	if events.ValidSurveyToken(token) != nil {
		return SurveyInvite{}, fmt.Errorf("%w: survey token", ErrNotFound)
	}
	var inv SurveyInvite
	var survey string
	err := s.r.QueryRowContext(ctx, "SELECT survey, respondent, store FROM survey_tokens WHERE hash = $1", surveyTokenHash(token)).
		Scan(&survey, &inv.respondent, &inv.store)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, fmt.Errorf("%w: survey token", ErrNotFound)
	}
	if err != nil {
		return inv, fmt.Errorf("store: survey token: %w", err)
	}
	inv.Survey, err = s.Survey(ctx, survey)
	return inv, err
}

// AnswerByToken records an answer given on the phone page a receipt's QR
// opened, by the same rule as answers from stores (the later partial, or
// the complete one, is kept). score < 0 means not answered yet.
func (s *Store) AnswerByToken(ctx context.Context, token string, score int, comment string, complete bool) error {
	inv, err := s.SurveyByToken(ctx, token)
	if err != nil {
		return err
	}
	if comment != "" && s.custKeys == nil {
		return ErrNoCustomerKeys
	}
	now := s.now()
	a := surveys.Answer{ID: ids.NewEventID(now), Survey: inv.Survey.ID, Kind: inv.Survey.Kind, Respondent: inv.respondent,
		Store: inv.store, Channel: "receipt_qr", At: now.UTC(), HLC: hlc.Timestamp{Wall: now.UnixMilli()},
		Comment: comment, Complete: complete}
	if score >= 0 {
		a.Score, a.Scored = score, true
	}
	if err := a.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s.retry(ctx, "answer survey", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := s.upsertSurveyAnswers(ctx, tx, []surveys.Answer{a}); err != nil {
			return err
		}
		return tx.Commit()
	})
}
