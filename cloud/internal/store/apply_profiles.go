package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/profiles"
	"github.com/omnisync/omnisync/shared/events"
)

// profilesApplier keeps customers' attributes by the rules of package
// profiles: per subject identifier and field, last writer wins by stamp.
// Values are sealed; the rows of a batch's subjects are read, the updates
// folded in by the rules, and the fields that changed written.
type profilesApplier struct{}

func (profilesApplier) name() string { return "profiles" }

func (profilesApplier) read(_ *Store, env *events.Envelope) (any, error) { return nil, nil }

func (profilesApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	var ups []*custRead
	subjects := map[string]bool{}
	for _, r := range t.custLive(events.KindUpdate) {
		if r.subject != "" && r.update != nil {
			ups = append(ups, r)
			subjects[r.subject] = true
		}
	}
	if len(ups) == 0 {
		return nil
	}
	have, err := t.s.loadProfiles(ctx, t.tx, sortedKeys(subjects))
	if err != nil {
		return err
	}
	changed := map[[2]string]bool{}
	for _, r := range ups {
		p := have[r.subject]
		if p == nil {
			p = profiles.Profile{}
			have[r.subject] = p
		}
		for _, f := range p.Apply(*r.update) {
			changed[[2]string{r.subject, f}] = true
		}
	}
	rs := newRowset(text("subject"), text("field"), blob("value_enc"), integer("cleared"), integer("hlc"), text("event_id"))
	for _, k := range sortedPairs(changed) {
		v := have[k[0]][k[1]]
		var enc []byte
		if !v.Cleared {
			enc = t.s.custKeys.SealString(v.Value, sealAD("cust_profile", k[0], k[1]))
		}
		cleared := int64(0)
		if v.Cleared {
			cleared = 1
		}
		rs.add(k[0], k[1], enc, cleared, v.Stamp.HLC.Pack(), v.Stamp.ID)
	}
	err = t.s.execRows(ctx, t.tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO cust_profile (subject, field, value_enc, cleared, hlc, event_id) SELECT subject, field, value_enc, cleared, hlc, event_id FROM ` + r + t.s.d.inOrder() + `
ON CONFLICT (subject, field) DO UPDATE SET value_enc = excluded.value_enc, cleared = excluded.cleared, hlc = excluded.hlc, event_id = excluded.event_id`
	})
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	return nil
}

// loadProfiles reads the profiles of subjects, values opened.
func (s *Store) loadProfiles(ctx context.Context, q dbq, subjects []string) (map[string]profiles.Profile, error) {
	out := map[string]profiles.Profile{}
	if len(subjects) == 0 {
		return out, nil
	}
	rs := newRowset(text("subject"))
	for _, sub := range subjects {
		rs.add(sub)
	}
	err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		if s.d.pg() {
			return `SELECT p.subject, p.field, p.value_enc, p.cleared, p.hlc, p.event_id FROM ` + r + ` CROSS JOIN LATERAL (SELECT * FROM cust_profile WHERE subject = r.subject) p`
		}
		return `SELECT p.subject, p.field, p.value_enc, p.cleared, p.hlc, p.event_id FROM cust_profile p JOIN ` + r + ` ON p.subject = r.subject`
	}, func(rows *sql.Rows) error {
		var (
			sub, field, id string
			enc            []byte
			cleared, h     int64
		)
		if err := rows.Scan(&sub, &field, &enc, &cleared, &h, &id); err != nil {
			return err
		}
		v := profiles.Value{Cleared: cleared != 0, Stamp: stampOf(h, id)}
		if !v.Cleared {
			val, err := s.custKeys.OpenString(enc, sealAD("cust_profile", sub, field))
			if err != nil {
				return fmt.Errorf("profile field %s: %w", field, err)
			}
			v.Value = val
		}
		if out[sub] == nil {
			out[sub] = profiles.Profile{}
		}
		out[sub][field] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load profiles: %w", err)
	}
	return out, nil
}
