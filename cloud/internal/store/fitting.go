package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/downsync"
)

// MaxComplements is how many complements a product's down-sync document
// lists.
const MaxComplements = 8

// RecsDocs returns the complements document of each product asked for that
// is in the catalog, in the order asked: its top pairs ranked by package
// cooccur, topped up with products of its category and brand. The
// document's version is the product's version plus its pairs' version, so
// it grows when either changes.
func (s *Store) RecsDocs(ctx context.Context, productIDs []string) ([]downsync.RecsDoc, error) {
	out := make([]downsync.RecsDoc, 0, len(productIDs))
	for _, id := range productIDs {
		d, ok, err := s.recsDoc(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("store: complements of %s: %w", id, err)
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *Store) recsDoc(ctx context.Context, id string) (downsync.RecsDoc, bool, error) {
	d := downsync.RecsDoc{ProductID: id}
	var category, brand string
	var pv, pms int64
	err := s.r.QueryRowContext(ctx, "SELECT category, brand, version, updated_ms FROM products WHERE product_id = $1", id).Scan(&category, &brand, &pv, &pms)
	if err == sql.ErrNoRows {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	var rv, rms int64
	err = s.r.QueryRowContext(ctx, "SELECT version, updated_ms FROM product_recs WHERE product_id = $1", id).Scan(&rv, &rms)
	if err != nil && err != sql.ErrNoRows {
		return d, false, err
	}
	d.Version, d.UpdatedMS = pv+rv, max(pms, rms)
	rows, err := s.r.QueryContext(ctx, `SELECT q.other, COALESCE(p.category, ''), q.tried, q.bought FROM (
	SELECT b AS other, tried, bought FROM product_pairs WHERE a = $1
	UNION ALL SELECT a AS other, tried, bought FROM product_pairs WHERE b = $1
) q LEFT JOIN products p ON p.product_id = q.other
ORDER BY q.tried + 2 * q.bought DESC, q.other LIMIT 200`, id)
	if err != nil {
		return d, false, err
	}
	var cands []cooccur.Candidate
	for rows.Next() {
		var c cooccur.Candidate
		if err := rows.Scan(&c.Product, &c.Category, &c.Tried, &c.Bought); err != nil {
			rows.Close()
			return d, false, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, false, err
	}
	ranked := cooccur.Rank(category, id, cands, MaxComplements)
	if len(ranked) < MaxComplements && category != "" {
		rows, err := s.r.QueryContext(ctx, `SELECT product_id FROM products WHERE category = $1 AND brand = $2 AND product_id <> $3
ORDER BY product_id LIMIT 20`, category, brand, id)
		if err != nil {
			return d, false, err
		}
		var similar []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return d, false, err
			}
			similar = append(similar, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return d, false, err
		}
		ranked = cooccur.Fill(ranked, id, similar, MaxComplements)
	}
	d.Complements = make([]downsync.Complement, 0, len(ranked))
	for _, c := range ranked {
		d.Complements = append(d.Complements, downsync.Complement{ProductID: c.Product, Reason: c.Reason, Score: c.Score})
	}
	return d, true, nil
}

// ChangedRecs is ChangedStock for complements documents: products whose
// pairs changed. (A product whose catalog entry changed is republished
// with it: see downpub.)
func (s *Store) ChangedRecs(ctx context.Context, since Cursor, limit int) ([]string, Cursor, error) {
	return s.changedIDs(ctx, "product_recs", "product_id", since, limit)
}

// TryOnRow is one product's try-ons in one room of one store over a
// period (package api's try-on analytics).
type TryOnRow struct {
	Store     string `json:"store"`
	Zone      string `json:"zone"`
	ProductID string `json:"product_id"`
	Name      string `json:"name,omitempty"`
	// Visits that tried the product; of those, BoughtVisit bought it at
	// the store within VisitWindow of the try, BoughtDay the same day.
	Tried       int64   `json:"tried"`
	BoughtVisit int64   `json:"bought_in_visit"`
	BoughtDay   int64   `json:"bought_same_day"`
	Rate        float64 `json:"try_to_buy_rate"`
	// Sizes counts the sizes shoppers asked staff for (assist requests
	// for another size or colour of the product; not calls for help, nor
	// escalations, which repeat a request).
	Sizes map[string]int64 `json:"sizes_asked,omitempty"`
}

// TryOnRoom is one room's visits in the period.
type TryOnRoom struct {
	Store  string `json:"store"`
	Zone   string `json:"zone"`
	Visits int64  `json:"visits"`
	// Requests counts assist requests from the room, Escalated those left
	// unanswered long enough to be escalated. An escalation is an event of
	// its own that repeats its request: it counts in Escalated, not again
	// in Requests.
	Requests  int64 `json:"requests"`
	Escalated int64 `json:"escalated"`
}

// TryOn is the try-on analytics of the days [from, to] (YYYY-MM-DD, UTC).
type TryOn struct {
	From     string      `json:"from"`
	To       string      `json:"to"`
	Rooms    []TryOnRoom `json:"rooms"`
	Products []TryOnRow  `json:"products"`
}

// VisitWindow is how long after a try a sale of the product at the store
// still counts as bought within the visit.
const VisitWindowMS = 60 * 60 * 1000

// TryOnStats computes the try-on analytics of days [from, to], for the
// stores given (all when empty).
func (s *Store) TryOnStats(ctx context.Context, from, to string, stores []string) (TryOn, error) {
	out := TryOn{From: from, To: to, Rooms: []TryOnRoom{}, Products: []TryOnRow{}}
	allowed := map[string]bool{}
	for _, st := range stores {
		allowed[st] = true
	}
	keep := func(st string) bool { return len(stores) == 0 || allowed[st] }
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return out, err
	}
	defer tx.Rollback()
	rooms := map[[2]string]int{} // index in out.Rooms
	type roomCount struct {
		st, z              string
		visits, req, escal int64
	}
	var counts []roomCount
	rows, err := tx.QueryContext(ctx, `SELECT store, zone, count(*) FROM fitting_visits WHERE day >= $1 AND day <= $2 GROUP BY store, zone ORDER BY store, zone`, from, to)
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var c roomCount
		if err := rows.Scan(&c.st, &c.z, &c.visits); err != nil {
			rows.Close()
			return out, err
		}
		counts = append(counts, c)
	}
	rows.Close()
	rows, err = tx.QueryContext(ctx, `SELECT store, zone, COALESCE(sum(1 - escalated), 0), COALESCE(sum(escalated), 0) FROM assist_requests
WHERE day >= $1 AND day <= $2 GROUP BY store, zone ORDER BY store, zone`, from, to)
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var c roomCount
		if err := rows.Scan(&c.st, &c.z, &c.req, &c.escal); err != nil {
			rows.Close()
			return out, err
		}
		counts = append(counts, c)
	}
	rows.Close()
	for _, c := range counts {
		if !keep(c.st) {
			continue
		}
		k := [2]string{c.st, c.z}
		i, ok := rooms[k]
		if !ok {
			i = len(out.Rooms)
			rooms[k] = i
			out.Rooms = append(out.Rooms, TryOnRoom{Store: c.st, Zone: c.z})
		}
		out.Rooms[i].Visits += c.visits
		out.Rooms[i].Requests += c.req
		out.Rooms[i].Escalated += c.escal
	}
	slices.SortFunc(out.Rooms, func(a, b TryOnRoom) int {
		return cmp.Or(strings.Compare(a.Store, b.Store), strings.Compare(a.Zone, b.Zone))
	})
	rows, err = tx.QueryContext(ctx, `SELECT t.store, t.zone, t.product_id, COALESCE(p.name, ''), count(*),
	sum(CASE WHEN EXISTS (SELECT 1 FROM basket_items b WHERE b.store = t.store AND b.product_id = t.product_id AND b.day = t.day
		AND b.at_ms >= t.at_ms AND b.at_ms <= t.at_ms + $3) THEN 1 ELSE 0 END),
	sum(CASE WHEN EXISTS (SELECT 1 FROM basket_items b WHERE b.store = t.store AND b.product_id = t.product_id AND b.day = t.day) THEN 1 ELSE 0 END)
FROM fitting_tries t LEFT JOIN products p ON p.product_id = t.product_id
WHERE t.day >= $1 AND t.day <= $2
GROUP BY t.store, t.zone, t.product_id, p.name ORDER BY t.store, t.zone, count(*) DESC, t.product_id`, from, to, int64(VisitWindowMS))
	if err != nil {
		return out, err
	}
	idx := map[[2]string][]int{} // (store, product) → rows
	for rows.Next() {
		var r TryOnRow
		if err := rows.Scan(&r.Store, &r.Zone, &r.ProductID, &r.Name, &r.Tried, &r.BoughtVisit, &r.BoughtDay); err != nil {
			rows.Close()
			return out, err
		}
		if !keep(r.Store) {
			continue
		}
		if r.Tried > 0 {
			r.Rate = float64(r.BoughtDay) / float64(r.Tried)
		}
		idx[[2]string{r.Store, r.ProductID}] = append(idx[[2]string{r.Store, r.ProductID}], len(out.Products))
		out.Products = append(out.Products, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	// Sizes asked for, per product and room.
	rows, err = tx.QueryContext(ctx, `SELECT a.store, a.zone, v.product_id, v.size, count(*) FROM assist_requests a JOIN variants v ON v.sku = a.sku
WHERE a.day >= $1 AND a.day <= $2 AND a.escalated = 0 AND a.reason <> 'help' GROUP BY a.store, a.zone, v.product_id, v.size`, from, to)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var st, z, p, size string
		var n int64
		if err := rows.Scan(&st, &z, &p, &size, &n); err != nil {
			return out, err
		}
		if size == "" {
			size = "?"
		}
		for _, i := range idx[[2]string{st, p}] {
			if out.Products[i].Zone == z {
				if out.Products[i].Sizes == nil {
					out.Products[i].Sizes = map[string]int64{}
				}
				out.Products[i].Sizes[size] += n
			}
		}
	}
	return out, rows.Err()
}
