package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/omnisync/omnisync/cloud/internal/exceptions"
	"github.com/omnisync/omnisync/shared/events"
)

// exceptionsApplier is the gate in front of the books: it rewrites
// inventory events by HQ's mappings, and holds in the exception queue,
// instead of applying, the events that still name an unknown SKU, GTIN or
// location (package exceptions decides), so they create no phantom stock
// position and no phantom oversell. It also settles replays: a held event
// or dead letter being replayed is claimed here, in the transaction that
// applies it, so it takes effect exactly once however often or by however
// many replicas the replay is asked for.
type exceptionsApplier struct{}

func (exceptionsApplier) name() string { return "exceptions" }

func (exceptionsApplier) read(_ *Store, env *events.Envelope) (any, error) {
	r, ok := exceptions.RefsOf(env)
	if !ok {
		return nil, nil
	}
	return &r, nil
}

// apply: everything happens in the gate.
func (exceptionsApplier) apply(context.Context, *applyTx, []itemRead) error { return nil }

// replaySource is what a replayed item was held as: an exception_events row
// (held, with its exception) or a dead letter (dead).
type replaySource struct {
	held, exception, dead int64
	by                    string
}

// excItem is one item the gate looks at.
type excItem struct {
	i    int
	refs exceptions.Refs
	// findings are its unknown values once rewritten.
	findings []exceptions.Finding
}

func (exceptionsApplier) gate(ctx context.Context, t *applyTx) error {
	reads := t.readsOf(exceptionsApplier{})
	refsOf := make(map[int]*exceptions.Refs, len(reads))
	for _, r := range reads {
		refsOf[r.item] = r.v.(*exceptions.Refs)
	}
	items := make([]excItem, 0, len(reads))
	replays := false
	for _, i := range t.applied {
		if t.rejected[i] != "" {
			continue
		}
		rp := t.p.items[i].replay
		replays = replays || rp != nil
		if r := refsOf[i]; r != nil {
			items = append(items, excItem{i: i, refs: *r})
		} else if rp != nil {
			items = append(items, excItem{i: i})
		}
	}
	if len(items) == 0 {
		return nil
	}
	s := t.s
	maps, catalog, err := s.loadMappings(ctx, t.tx)
	if err != nil {
		return err
	}
	if !catalog && maps.Len() == 0 && !replays {
		return nil
	}
	known := exceptions.Known{Catalog: catalog}
	if catalog {
		var skus, locs []string
		for _, it := range items {
			r := maps.MapRefs(it.refs)
			skus = append(skus, r.SKUs...)
			locs = append(locs, r.Locations...)
		}
		origins := map[string]bool{}
		for _, it := range items {
			origins[t.p.items[it.i].Env.Origin.Store] = true
		}
		if known.SKUs, known.GTINs, err = s.knownSKUs(ctx, t.tx, skus); err != nil {
			return err
		}
		if known.Locations, err = s.knownLocations(ctx, t.tx, locs, origins, maps); err != nil {
			return err
		}
	}
	for k := range items {
		it := &items[k]
		if len(it.refs.SKUs)+len(it.refs.Locations) == 0 {
			continue
		}
		m := maps
		var extra exceptions.Mappings
		exceptions.Resolve(maps.MapRefs(it.refs), known, &extra)
		if extra.Len() > 0 {
			m = maps.Clone()
			m.AddAll(extra)
		}
		it.findings = exceptions.Classify(m.MapRefs(it.refs), known)
		if len(it.findings) > 0 || m.Len() == 0 {
			continue
		}
		env, changed, err := exceptions.Rewrite(t.p.items[it.i].Env, m)
		if err != nil {
			return err
		}
		if changed {
			if reason := t.reread(it.i, &env); reason != "" {
				if src := t.p.items[it.i].replay; src != nil && src.held != 0 {
					// Still held, with why: the mapping makes an event
					// the rules refuse, and HQ fixes the mapping.
					if err := s.refusedAgain(ctx, t.tx, src, "after mapping: "+reason); err != nil {
						return err
					}
					t.divert(it.i)
					t.holdCounted(t.p.items[it.i].Env.Origin.Store)
					continue
				}
				t.reject(it.i, "after mapping: "+reason)
			}
		}
	}
	// Hold what is still unknown; claim what is replayed.
	var hold []excItem
	var claimHeld, claimDead []int
	for _, it := range items {
		if t.rejected[it.i] != "" || t.diverted[it.i] {
			continue
		}
		src := t.p.items[it.i].replay
		switch {
		case len(it.findings) > 0:
			hold = append(hold, it)
			if src != nil && src.dead != 0 {
				claimDead = append(claimDead, it.i)
			}
		case src != nil && src.held != 0:
			claimHeld = append(claimHeld, it.i)
		case src != nil && src.dead != 0:
			claimDead = append(claimDead, it.i)
		}
	}
	if len(hold)+len(claimHeld)+len(claimDead) == 0 {
		return nil
	}
	// Dead letters first (by id): one that another replay took is
	// dropped, held nowhere.
	slices.SortFunc(claimDead, func(a, b int) int { return cmp.Compare(t.p.items[a].replay.dead, t.p.items[b].replay.dead) })
	for _, i := range claimDead {
		src := t.p.items[i].replay
		res, err := t.tx.ExecContext(ctx, `UPDATE dead_letters SET replayed_ms = $1, replayed_by = $2 WHERE id = $3 AND replayed_ms = 0`, t.nowMS, src.by, src.dead)
		if err != nil {
			return fmt.Errorf("claim dead letter: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.divert(i)
		}
	}
	if err := s.holdEvents(ctx, t, hold); err != nil {
		return err
	}
	slices.SortFunc(claimHeld, func(a, b int) int { return cmp.Compare(t.p.items[a].replay.held, t.p.items[b].replay.held) })
	var touched []int64
	by := ""
	for _, i := range claimHeld {
		src := t.p.items[i].replay
		res, err := t.tx.ExecContext(ctx, `UPDATE exception_events SET state = 'replayed', done_by = $1, done_ms = $2 WHERE id = $3 AND state = 'held'`, src.by, t.nowMS, src.held)
		if err != nil {
			return fmt.Errorf("claim held event: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.divert(i)
			continue
		}
		touched, by = append(touched, src.exception), src.by
	}
	return s.settleExceptions(ctx, t.tx, touched, by, t.nowMS)
}

// holdCounted counts an event held now, and the store whose exceptions
// it joined: a store manager's console refreshes on it.
func (t *applyTx) holdCounted(store string) {
	t.out.held++
	if !slices.Contains(t.out.heldStores, store) {
		t.out.heldStores = append(t.out.heldStores, store)
	}
}

// reread reads item i's rewritten envelope again for every applier; it
// returns the reason the rules refuse it for ("" when they do not).
func (t *applyTx) reread(i int, env *events.Envelope) string {
	reads := make([]any, len(t.s.appliers))
	for a, ap := range t.s.appliers {
		v, err := ap.read(t.s, env)
		if err != nil {
			return err.Error()
		}
		reads[a] = v
	}
	if t.over == nil {
		t.over = map[int][]any{}
	}
	t.over[i] = reads
	return ""
}

// divert takes item i out of the batch: a gate has put it elsewhere (the
// exception queue), or it was already settled by another replay. It is
// neither applied nor dead-lettered.
func (t *applyTx) divert(i int) {
	if t.diverted == nil {
		t.diverted = map[int]bool{}
	}
	t.diverted[i] = true
}

// holdEvents puts items in the exception queue: each finding's exception
// is upserted (in (reason, value, store) order: the lock order), and each
// event kept verbatim under its first finding's exception. A replayed
// held event that is still unknown stays where it is, under the exception
// of its first remaining unknown value.
func (s *Store) holdEvents(ctx context.Context, t *applyTx, hold []excItem) error {
	hold = slices.DeleteFunc(hold, func(it excItem) bool { return t.diverted[it.i] })
	if len(hold) == 0 {
		return nil
	}
	type exKey struct {
		reason, value, store string
	}
	counts := map[exKey]int64{}
	for _, it := range hold {
		st := t.p.items[it.i].Env.Origin.Store
		for _, f := range it.findings {
			k := exKey{string(f.Reason), f.Value, st}
			// A replayed held event was counted when it first came.
			if src := t.p.items[it.i].replay; src == nil || src.held == 0 {
				counts[k]++
			} else if _, ok := counts[k]; !ok {
				counts[k] = 0
			}
		}
	}
	keys := make([]exKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b exKey) int {
		return strings.Compare(a.reason+"\x00"+a.value+"\x00"+a.store, b.reason+"\x00"+b.value+"\x00"+b.store)
	})
	ids := make(map[exKey]int64, len(keys))
	for _, k := range keys {
		var id int64
		err := t.tx.QueryRowContext(ctx, `INSERT INTO exceptions (reason, value, store, first_ms, last_ms, count) VALUES ($1, $2, $3, $4, $4, $5)
ON CONFLICT (reason, value, store) DO UPDATE SET last_ms = excluded.last_ms, count = exceptions.count + excluded.count,
	state = 'open', note = '', done_by = '', done_ms = 0
RETURNING id`, k.reason, clean(k.value), k.store, t.nowMS, counts[k]).Scan(&id)
		if err != nil {
			return fmt.Errorf("upsert exception: %w", err)
		}
		ids[k] = id
	}
	var moved []int64
	by := ""
	for _, it := range hold {
		item := t.p.items[it.i]
		o := item.Env.Origin
		first := it.findings[0]
		exID := ids[exKey{string(first.Reason), first.Value, o.Store}]
		reasons := make([]string, len(it.findings))
		for j, f := range it.findings {
			reasons[j] = string(f.Reason) + ":" + f.Value
		}
		t.divert(it.i)
		t.holdCounted(o.Store)
		if src := item.replay; src != nil && src.held != 0 {
			if _, err := t.tx.ExecContext(ctx, `UPDATE exception_events SET exception_id = $1, reasons = $2 WHERE id = $3 AND state = 'held'`,
				exID, clean(strings.Join(reasons, " ")), src.held); err != nil {
				return fmt.Errorf("keep held event: %w", err)
			}
			if src.exception != exID {
				moved, by = append(moved, src.exception), src.by
			}
			continue
		}
		payload := item.Raw
		if len(payload) == 0 {
			payload, _ = json.Marshal(item.Env)
		}
		plain, enc := s.sealPayload(string(item.Env.Kind), payload)
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO exception_events (exception_id, event_id, store, device, epoch, seq, kind, subject, reasons, payload, payload_enc, at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			exID, clean(item.Env.ID), clean(o.Store), clean(o.Device), clampInt(o.Epoch), clampInt(o.Seq), clean(string(item.Env.Kind)),
			clean(item.Subject), clean(strings.Join(reasons, " ")), plain, enc, t.nowMS); err != nil {
			return fmt.Errorf("hold event: %w", err)
		}
		s.log.Warn("store: event held as an exception", "event_id", item.Env.ID, "store", o.Store, "kind", item.Env.Kind, "reasons", strings.Join(reasons, " "))
	}
	return s.settleExceptions(ctx, t.tx, moved, by, t.nowMS)
}

// settleExceptions marks resolved the open exceptions among ids that hold
// no event any more.
func (s *Store) settleExceptions(ctx context.Context, tx *sql.Tx, ids []int64, by string, nowMS int64) error {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE exceptions SET state = 'resolved', done_by = $1, done_ms = $2
WHERE id = $3 AND state = 'open' AND NOT EXISTS (SELECT 1 FROM exception_events e WHERE e.exception_id = $3 AND e.state = 'held')`, by, nowMS, id); err != nil {
			return fmt.Errorf("settle exception: %w", err)
		}
	}
	return nil
}

// loadMappings reads HQ's mappings (a small table, read whole) and
// whether a catalog has been imported (the checks apply only then), in one
// round trip. Once a catalog is seen it stays seen for the process (a
// catalog is never emptied by an import), and only the mappings are read.
func (s *Store) loadMappings(ctx context.Context, q querier) (exceptions.Mappings, bool, error) {
	seen := s.catalogSeen.Load()
	query := `SELECT 1, kind, from_value, to_value FROM exception_mappings`
	if !seen {
		query += ` UNION ALL SELECT 0, '', '', '' WHERE EXISTS (SELECT 1 FROM variants)`
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return exceptions.Mappings{}, false, fmt.Errorf("mappings: %w", err)
	}
	defer rows.Close()
	var ms []exceptions.Mapping
	catalog := seen
	for rows.Next() {
		var mapping int
		var m exceptions.Mapping
		if err := rows.Scan(&mapping, &m.Kind, &m.From, &m.To); err != nil {
			return exceptions.Mappings{}, false, err
		}
		if mapping == 0 {
			catalog = true
			continue
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return exceptions.Mappings{}, false, err
	}
	if catalog && !seen {
		s.catalogSeen.Store(true)
	}
	return exceptions.NewMappings(ms), catalog, nil
}

// knownSKUs returns which of skus the catalog has as variants, and of the
// others which it has as GTINs (with their SKU).
func (s *Store) knownSKUs(ctx context.Context, q querier, skus []string) (map[string]bool, map[string]string, error) {
	slices.Sort(skus)
	skus = slices.Compact(skus)
	known := map[string]bool{}
	gtins := map[string]string{}
	ask := s.variants.filter(skus, known)
	if len(ask) == 0 {
		return known, gtins, nil
	}
	var a args
	rows, err := q.QueryContext(ctx, `SELECT sku FROM variants WHERE `+inList(&a, "sku", ask), a...)
	if err != nil {
		return nil, nil, fmt.Errorf("known skus: %w", err)
	}
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			rows.Close()
			return nil, nil, err
		}
		known[sku] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	s.variants.add(ask, known)
	var rest []string
	for _, sku := range skus {
		if !known[sku] {
			rest = append(rest, sku)
		}
	}
	if len(rest) == 0 {
		return known, gtins, nil
	}
	a = nil
	rows, err = q.QueryContext(ctx, `SELECT gtin, sku FROM variant_gtins WHERE `+inList(&a, "gtin", rest), a...)
	if err != nil {
		return nil, nil, fmt.Errorf("known gtins: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g, sku string
		if err := rows.Scan(&g, &sku); err != nil {
			return nil, nil, err
		}
		gtins[g] = sku
	}
	return known, gtins, rows.Err()
}

// variantCache remembers SKUs seen in the catalog's variants, so the gate
// asks the database only about the others. A variant is never deleted (an
// import adds and changes them; only GTINs move), so what it holds stays
// true; it stops growing at maxCachedVariants.
type variantCache struct {
	mu   sync.RWMutex
	skus map[string]struct{}
}

// maxCachedVariants bounds the cache: some 64 MB of SKUs at most.
const maxCachedVariants = 1 << 20

// filter marks in known the skus the cache holds and returns the others.
func (c *variantCache) filter(skus []string, known map[string]bool) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ask []string
	for _, sku := range skus {
		if _, ok := c.skus[sku]; ok {
			known[sku] = true
		} else {
			ask = append(ask, sku)
		}
	}
	return ask
}

// add remembers the skus that known says are variants.
func (c *variantCache) add(skus []string, known map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.skus == nil {
		c.skus = map[string]struct{}{}
	}
	for _, sku := range skus {
		if known[sku] && len(c.skus) < maxCachedVariants {
			c.skus[sku] = struct{}{}
		}
	}
}

// knownLocations returns which of locs are known (package exceptions):
// the online location, the batch's own stores, mapping targets, stores
// that have synced, and stores an account is scoped to.
func (s *Store) knownLocations(ctx context.Context, q querier, locs []string, origins map[string]bool, maps exceptions.Mappings) (map[string]bool, error) {
	known := map[string]bool{}
	for o := range origins {
		known[o] = true
	}
	if s.rules.Online != "" {
		known[s.rules.Online] = true
	}
	for _, l := range maps.Targets() {
		known[l] = true
	}
	var ask []string
	for _, l := range locs {
		if !known[l] {
			ask = append(ask, l)
		}
	}
	slices.Sort(ask)
	ask = slices.Compact(ask)
	if len(ask) == 0 {
		return known, nil
	}
	var a args
	in1 := inList(&a, "store", ask)
	rows, err := q.QueryContext(ctx, `SELECT store FROM device_progress WHERE `+in1+` UNION SELECT store FROM device_heartbeats WHERE `+in1, a...)
	if err != nil {
		return nil, fmt.Errorf("known locations: %w", err)
	}
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			rows.Close()
			return nil, err
		}
		known[st] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT stores FROM auth_users WHERE stores <> ''`)
	if err != nil {
		return nil, fmt.Errorf("known locations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var list string
		if err := rows.Scan(&list); err != nil {
			return nil, err
		}
		for _, st := range strings.Split(list, ",") {
			if st = strings.TrimSpace(st); st != "" {
				known[st] = true
			}
		}
	}
	return known, rows.Err()
}
