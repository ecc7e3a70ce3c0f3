package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/shared/events"
)

// consentApplier keeps customers' consent by the rules of package consent:
// per subject identifier and purpose, the newest opt-out and the newest
// grant per channel (consent.State), which is all May needs; an opt-out
// holds on every channel. The state of a batch's subjects is read, the
// decisions added by the rules, and the slots that changed written.
type consentApplier struct{}

func (consentApplier) name() string { return "consent" }

func (consentApplier) read(_ *Store, env *events.Envelope) (any, error) { return nil, nil }

// consentSlot names where a decision is kept in its subject's state.
func consentSlot(d consent.Decision) string {
	if d.OptOut() {
		return "optout"
	}
	return "grant:" + string(d.Channel)
}

func (consentApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	var ds []*custRead
	subjects := map[string]bool{}
	for _, r := range t.custLive(events.KindConsent) {
		if r.subject != "" && r.decision != nil {
			ds = append(ds, r)
			subjects[r.subject] = true
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return t.s.addDecisions(ctx, t.tx, subjects, func(add func(subject string, d consent.Decision)) {
		for _, r := range ds {
			add(r.subject, *r.decision)
		}
	})
}

// addDecisions folds decisions into their subjects' states and writes the
// slots that changed.
func (s *Store) addDecisions(ctx context.Context, tx dbq, subjects map[string]bool, each func(add func(subject string, d consent.Decision))) error {
	states, err := s.loadConsent(ctx, tx, sortedKeys(subjects))
	if err != nil {
		return err
	}
	type slot struct{ subject, purpose, slot string }
	changed := map[slot]consent.Decision{}
	each(func(subject string, d consent.Decision) {
		st := states[subject]
		if st == nil {
			st = &consent.State{}
			states[subject] = st
		}
		if st.Add(d) {
			changed[slot{subject, string(d.Purpose), consentSlot(d)}] = d
		}
	})
	keys := make([]slot, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sortSlots := func(a, b slot) int {
		switch {
		case a.subject != b.subject:
			return cmpStr(a.subject, b.subject)
		case a.purpose != b.purpose:
			return cmpStr(a.purpose, b.purpose)
		}
		return cmpStr(a.slot, b.slot)
	}
	slicesSort(keys, sortSlots)
	rs := newRowset(text("subject"), text("purpose"), text("slot"), text("decision"))
	for _, k := range keys {
		// Decisions carry no personal data (purpose, channel, status,
		// stamps and where they were captured): kept as JSON.
		b, err := json.Marshal(changed[k])
		if err != nil {
			return err
		}
		rs.add(k.subject, k.purpose, k.slot, string(b))
	}
	err = s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO cust_consent (subject, purpose, slot, decision) SELECT subject, purpose, slot, decision FROM ` + r + s.d.inOrder() + `
ON CONFLICT (subject, purpose, slot) DO UPDATE SET decision = excluded.decision`
	})
	if err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	return nil
}

// loadConsent reads the consent states of subjects.
func (s *Store) loadConsent(ctx context.Context, q dbq, subjects []string) (map[string]*consent.State, error) {
	out := map[string]*consent.State{}
	if len(subjects) == 0 {
		return out, nil
	}
	rs := newRowset(text("subject"))
	for _, sub := range subjects {
		rs.add(sub)
	}
	err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		if s.d.pg() {
			return `SELECT c.subject, c.decision FROM ` + r + ` CROSS JOIN LATERAL (SELECT * FROM cust_consent WHERE subject = r.subject) c`
		}
		return `SELECT c.subject, c.decision FROM cust_consent c JOIN ` + r + ` ON c.subject = r.subject`
	}, func(rows *sql.Rows) error {
		var sub, js string
		if err := rows.Scan(&sub, &js); err != nil {
			return err
		}
		var d consent.Decision
		if err := json.Unmarshal([]byte(js), &d); err != nil {
			return fmt.Errorf("consent decision: %w", err)
		}
		st := out[sub]
		if st == nil {
			st = &consent.State{}
			out[sub] = st
		}
		st.Add(d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load consent: %w", err)
	}
	return out, nil
}
