package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/events"
)

// fittingApplier keeps the fitting rooms' books: each visit and the
// products tried in it (enter events), the products tried together
// (package cooccur: a pair's count is the number of visits holding both),
// the version of each product's published complements, and shoppers'
// requests for staff (assist). The products bought together are folded
// from the ledger's sales after they are applied (baskets.go), off the
// sales' apply path.
//
// Everything is anonymous: a visit is a store, a room and a time. Tries
// are sets keyed by visit, so a replayed or reordered event adds nothing:
// only memberships that are new to the database (INSERT ... ON CONFLICT
// DO NOTHING RETURNING) count pairs, under the visit's row lock (LOCKS.md,
// level 9).
type fittingApplier struct{}

func (fittingApplier) name() string { return "fitting" }

// maxSessionMembers bounds the products of one visit or basket that count
// pairs: a basket of 500 lines would otherwise bring 125,000 pairs, and
// says little about what goes together.
const maxSessionMembers = 30

type tryRead struct {
	store, visit, zone, day, gtin string
	atMS                          int64
}

type assistRead struct {
	eventID, store, device, day string
	atMS                        int64
	a                           events.Assist
}

// dayOf is the UTC day of an HLC wall time: what "bought the same day"
// and the analytics' days mean.
func dayOf(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateOnly) }

func (fittingApplier) read(_ *Store, env *events.Envelope) (any, error) {
	at := env.HLC.Wall
	switch env.Kind {
	case events.KindEnter:
		var fr events.FittingRoom
		if err := json.Unmarshal(env.Data, &fr); err != nil || fr.GTIN == "" || fr.Zone == "" {
			return nil, nil // the event's schema is checked elsewhere; nothing to learn
		}
		visit := fr.Visit
		if visit == "" {
			// Agents before visits: one visit per room and hour.
			visit = fr.Zone + "@" + time.UnixMilli(at).UTC().Format("2006-01-02T15")
		}
		return &tryRead{store: env.Origin.Store, visit: visit, zone: fr.Zone, day: dayOf(at), gtin: fr.GTIN, atMS: at}, nil
	case events.KindAssist:
		var a events.Assist
		if err := json.Unmarshal(env.Data, &a); err != nil {
			return nil, fmt.Errorf("assist: %w", err)
		}
		return &assistRead{eventID: env.ID, store: env.Origin.Store, device: env.Origin.Device, day: dayOf(at), atMS: at, a: a}, nil
	}
	return nil, nil
}

type sessionKey struct{ store, visit string }

func (fittingApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	var tries []*tryRead
	var assists []*assistRead
	for _, r := range reads {
		switch v := r.v.(type) {
		case *tryRead:
			tries = append(tries, v)
		case *assistRead:
			assists = append(assists, v)
		}
	}
	pairs := map[cooccur.Pair]*[2]int64{} // tried, bought
	if err := applyTries(ctx, t, tries, pairs); err != nil {
		return fmt.Errorf("fitting tries: %w", err)
	}
	ids, err := t.s.addPairs(ctx, t.tx, t.nowMS, pairs)
	if err != nil {
		return fmt.Errorf("product pairs: %w", err)
	}
	t.out.recProducts = ids
	if err := applyAssists(ctx, t, assists); err != nil {
		return fmt.Errorf("assists: %w", err)
	}
	return nil
}

func (t *applyTx) least(a, b string) string {
	if t.s.d.pg() {
		return "LEAST(" + a + ", " + b + ")"
	}
	return "min(" + a + ", " + b + ")"
}

func applyTries(ctx context.Context, t *applyTx, tries []*tryRead, pairs map[cooccur.Pair]*[2]int64) error {
	if len(tries) == 0 {
		return nil
	}
	slices.SortFunc(tries, func(a, b *tryRead) int {
		if c := strings.Compare(a.store, b.store); c != 0 {
			return c
		}
		if c := strings.Compare(a.visit, b.visit); c != 0 {
			return c
		}
		return strings.Compare(a.gtin, b.gtin)
	})
	// Visits, in key order: the upsert locks each visit's row (PostgreSQL),
	// so two replicas adding to one visit take turns and each sees the
	// other's tries.
	vs := newRowset(text("store"), text("visit"), text("zone"), text("day"), integer("started_ms"))
	var keys []sessionKey
	for i, r := range tries {
		if i > 0 && tries[i-1].store == r.store && tries[i-1].visit == r.visit {
			continue
		}
		started := r.atMS
		for _, o := range tries[i:] {
			if o.store != r.store || o.visit != r.visit {
				break
			}
			started = min(started, o.atMS)
		}
		vs.add(r.store, r.visit, r.zone, r.day, started)
		keys = append(keys, sessionKey{r.store, r.visit})
	}
	err := t.s.execRows(ctx, t.tx, vs, "k", func(a *args, k string) string {
		return `INSERT INTO fitting_visits (store, visit, zone, day, started_ms) SELECT store, visit, zone, day, started_ms FROM ` + k + t.s.d.inOrder() + `
ON CONFLICT (store, visit) DO UPDATE SET started_ms = ` + t.least("fitting_visits.started_ms", "excluded.started_ms")
	})
	if err != nil {
		return err
	}
	rs := newRowset(text("store"), text("visit"), text("zone"), text("day"), text("gtin"), integer("at_ms"))
	for i, r := range tries {
		if i > 0 && *tries[i-1] == *r {
			continue
		}
		rs.add(r.store, r.visit, r.zone, r.day, r.gtin, r.atMS)
	}
	fresh := map[sessionKey][]string{}
	err = t.s.queryRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO fitting_tries (store, visit, product_id, sku, zone, day, at_ms)
SELECT k.store, k.visit, v.product_id, v.sku, k.zone, k.day, k.at_ms FROM ` + k + `
JOIN variant_gtins g ON g.gtin = k.gtin JOIN variants v ON v.sku = g.sku` + t.s.d.inOrder() + `
ON CONFLICT DO NOTHING RETURNING store, visit, product_id`
	}, func(rows *sql.Rows) error {
		var k sessionKey
		var p string
		if err := rows.Scan(&k.store, &k.visit, &p); err != nil {
			return err
		}
		fresh[k] = append(fresh[k], p)
		return nil
	})
	if err != nil || len(fresh) == 0 {
		return err
	}
	// What the visits held before this batch.
	ks := newRowset(text("store"), text("visit"))
	for _, k := range keys {
		if len(fresh[k]) > 0 {
			ks.add(k.store, k.visit)
		}
	}
	all := map[sessionKey][]string{}
	err = t.s.queryRows(ctx, t.tx, ks, "k", func(a *args, k string) string {
		return `SELECT f.store, f.visit, f.product_id FROM fitting_tries f JOIN ` + k + ` ON f.store = k.store AND f.visit = k.visit`
	}, func(rows *sql.Rows) error {
		var k sessionKey
		var p string
		if err := rows.Scan(&k.store, &k.visit, &p); err != nil {
			return err
		}
		all[k] = append(all[k], p)
		return nil
	})
	if err != nil {
		return err
	}
	for k, added := range fresh {
		isNew := map[string]bool{}
		for _, p := range added {
			isNew[p] = true
		}
		var existing []string
		for _, p := range all[k] {
			if !isNew[p] {
				existing = append(existing, p)
			}
		}
		countPairs(existing, added, pairs, 0)
	}
	return nil
}

// countPairs adds the pairs a session's new members bring (index 0 tried,
// 1 bought), within maxSessionMembers.
func countPairs(existing, added []string, pairs map[cooccur.Pair]*[2]int64, kind int) {
	slices.Sort(existing)
	if len(existing) >= maxSessionMembers {
		return
	}
	news, ps := cooccur.Add(existing, added)
	if len(existing)+len(news) > maxSessionMembers {
		news = news[:maxSessionMembers-len(existing)]
		_, ps = cooccur.Add(existing, news)
	}
	for _, p := range ps {
		c := pairs[p]
		if c == nil {
			c = &[2]int64{}
			pairs[p] = c
		}
		c[kind]++
	}
}

// addPairs adds pairs to product_pairs and moves the version of each
// product they name (product_recs), in key order (LOCKS.md, level 9); it
// returns those products, sorted.
func (s *Store) addPairs(ctx context.Context, tx *sql.Tx, nowMS int64, pairs map[cooccur.Pair]*[2]int64) ([]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	keys := make([]cooccur.Pair, 0, len(pairs))
	products := map[string]bool{}
	for p := range pairs {
		keys = append(keys, p)
		products[p.A], products[p.B] = true, true
	}
	slices.SortFunc(keys, func(a, b cooccur.Pair) int {
		if c := strings.Compare(a.A, b.A); c != 0 {
			return c
		}
		return strings.Compare(a.B, b.B)
	})
	rs := newRowset(text("a"), text("b"), integer("tried"), integer("bought"))
	for _, k := range keys {
		rs.add(k.A, k.B, pairs[k][0], pairs[k][1])
	}
	err := s.execRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO product_pairs (a, b, tried, bought) SELECT a, b, tried, bought FROM ` + k + s.d.inOrder() + `
ON CONFLICT (a, b) DO UPDATE SET tried = product_pairs.tried + excluded.tried, bought = product_pairs.bought + excluded.bought`
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(products))
	for p := range products {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	ps := newRowset(text("product_id"))
	for _, id := range ids {
		ps.add(id)
	}
	err = s.execRows(ctx, tx, ps, "p", func(a *args, p string) string {
		return `INSERT INTO product_recs (product_id, version, updated_ms) SELECT product_id, 1, ` + a.add(nowMS) + ` FROM ` + p + s.d.inOrder() + `
ON CONFLICT (product_id) DO UPDATE SET version = product_recs.version + 1, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func applyAssists(ctx context.Context, t *applyTx, assists []*assistRead) error {
	if len(assists) == 0 {
		return nil
	}
	slices.SortFunc(assists, func(a, b *assistRead) int { return strings.Compare(a.eventID, b.eventID) })
	rs := newRowset(text("event_id"), text("store"), text("device"), text("zone"), text("sku"), text("from_sku"), text("reason"),
		text("request"), integer("escalated"), integer("waited_ms"), text("day"), integer("at_ms"))
	for _, r := range assists {
		rs.add(r.eventID, r.store, r.device, r.a.Zone, r.a.SKU, r.a.From, r.a.Reason, r.a.Request, b2i(r.a.Escalated), r.a.WaitedMS, r.day, r.atMS)
	}
	return t.s.execRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO assist_requests (event_id, store, device, zone, sku, from_sku, reason, request, escalated, waited_ms, day, at_ms)
SELECT event_id, store, device, zone, sku, from_sku, reason, request, escalated, waited_ms, day, at_ms FROM ` + k + t.s.d.inOrder() + `
ON CONFLICT DO NOTHING`
	})
}
