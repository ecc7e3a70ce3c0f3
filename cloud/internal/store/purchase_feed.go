package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
)

// The purchase feed is what the customer analytics (package insights)
// follow: every purchase attributed to a customer, by master id, in a log
// whose positions are in commit order. Every change to whose purchase a
// sale is (a new purchase, a merge, an unmerge, an erasure) appends to the
// log in the transaction that makes it, so a reader resuming from its last
// position misses nothing and counts nothing twice.
//
// Commit order: positions come from the one row of cust_feed_head,
// updated in the writing transaction. Only customer writes append, and
// they hold the customers' lock (LOCKS.md); the row's lock alone would do
// too: a transaction waiting for it gets its positions after the holder
// committed, so a lower position is never committed after a higher one is
// visible. A sequence would not do: its values are handed out in start
// order, not commit order.
//
// A purchase taken away from a customer (a merge moves it to the
// surviving master id, an unmerge to the split-off customer, an erasure
// drops it) cannot be subtracted from RFM (recency is a maximum), so the
// log says "reset" for the customer who lost it, followed by that
// customer's remaining purchases marked moved; the customer who gains it
// gets it marked moved. Moved entries are re-attributions: they count in
// the customer's RFM but not again in AOV, and trigger nothing. An
// erased customer's earlier entries lose their master id (they stay in
// AOV, anonymous, as the purchases stay in the books).

// FeedOp is what a purchase feed entry says.
type FeedOp string

const (
	FeedSale   FeedOp = "sale"   // a new purchase of Customer
	FeedReturn FeedOp = "return" // a new refund of Customer
	// FeedMovedSale and FeedMovedReturn re-attribute a purchase counted
	// before to Customer.
	FeedMovedSale   FeedOp = "sale_moved"
	FeedMovedReturn FeedOp = "return_moved"
	// FeedReset forgets everything attributed to Customer so far (moved
	// entries with what remains follow).
	FeedReset FeedOp = "reset"
)

// FeedEntry is one entry of the purchase feed.
type FeedEntry struct {
	Pos      int64
	Op       FeedOp
	Customer string // master id; "" for an erased customer's purchase
	EventID  string
	At       time.Time
	Amount   int64 // minor units, never negative
	Store    string
	Channel  string
}

// PurchasesAfter returns up to limit entries of the purchase feed after
// position pos, in position order.
func (s *Store) PurchasesAfter(ctx context.Context, pos int64, limit int) ([]FeedEntry, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, `SELECT pos, op, customer, event_id, hlc, amount, store, channel FROM cust_feed WHERE pos > $1 ORDER BY pos LIMIT $2`, pos, limit)
	if err != nil {
		return nil, fmt.Errorf("purchase feed: %w", err)
	}
	defer rows.Close()
	out := []FeedEntry{}
	for rows.Next() {
		var e FeedEntry
		var h int64
		if err := rows.Scan(&e.Pos, &e.Op, &e.Customer, &e.EventID, &h, &e.Amount, &e.Store, &e.Channel); err != nil {
			return nil, fmt.Errorf("purchase feed: %w", err)
		}
		if h != 0 {
			e.At = stampOf(h, e.EventID).HLC.Time().UTC()
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("purchase feed: %w", err)
	}
	return out, nil
}

// feedAttr is a purchase as the feed attributes it.
type feedAttr struct {
	eventID, subject, customer, kind, store, channel string
	hlc, amount                                      int64
}

func (a feedAttr) op(moved bool) FeedOp {
	ret := a.kind == string(events.KindReturn)
	switch {
	case moved && ret:
		return FeedMovedReturn
	case moved:
		return FeedMovedSale
	case ret:
		return FeedReturn
	}
	return FeedSale
}

// syncPurchaseFeed brings the feed in step with the purchases of subjects
// (digests whose purchases were added, whose customer changed, or that
// were erased): it compares each purchase's customer now with the one the
// feed gave it and appends what changed. erased: the subjects are being
// erased, so every entry of their purchases is anonymised. It returns the customers the feed named now. Call
// it under the customers' lock, after the change is written.
func (s *Store) syncPurchaseFeed(ctx context.Context, tx dbq, subjects []string, erased bool) ([]string, error) {
	subjects = sortedUnique(subjects)
	if len(subjects) == 0 {
		return nil, nil
	}
	rs := newRowset(text("k"))
	for _, d := range subjects {
		rs.add(d)
	}
	scan := func(into map[string]feedAttr) func(*sql.Rows) error {
		return func(rows *sql.Rows) error {
			var a feedAttr
			if err := rows.Scan(&a.eventID, &a.subject, &a.customer, &a.kind, &a.hlc, &a.amount, &a.store, &a.channel); err != nil {
				return err
			}
			into[a.eventID] = a
			return nil
		}
	}
	want, have := map[string]feedAttr{}, map[string]feedAttr{}
	err := s.queryRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `SELECT p.event_id, p.subject, COALESCE(i.customer, ''), p.kind, p.hlc, p.amount, p.store, p.channel FROM ` + s.probe(r, "cust_purchases", "p", "subject", "r.k") +
			` LEFT JOIN cust_identifiers i ON ` + s.d.identKey("i.digest") + ` = ` + s.d.identKey("p.subject")
	}, scan(want))
	if err != nil {
		return nil, fmt.Errorf("purchase feed: read purchases: %w", err)
	}
	err = s.queryRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `SELECT a.event_id, a.subject, a.customer, a.kind, a.hlc, a.amount, a.store, a.channel FROM ` + s.probe(r, "cust_feed_attr", "a", "subject", "r.k")
	}, scan(have))
	if err != nil {
		return nil, fmt.Errorf("purchase feed: read attributions: %w", err)
	}
	var fresh, moved, upsert []feedAttr
	var drop []string
	reset := map[string]bool{}
	for id, w := range want {
		h, ok := have[id]
		switch {
		case ok && h.customer == w.customer:
			continue
		case !ok && w.customer != "":
			fresh = append(fresh, w)
		case ok:
			if h.customer != "" {
				reset[h.customer] = true
			}
			if w.customer != "" {
				moved = append(moved, w)
			}
		}
		upsert = append(upsert, w)
	}
	for id, h := range have {
		if _, ok := want[id]; !ok {
			if h.customer != "" {
				reset[h.customer] = true
			}
			drop = append(drop, id)
		}
	}
	if len(fresh)+len(moved)+len(upsert)+len(drop)+len(reset) == 0 {
		return nil, nil
	}
	byStamp := func(a, b feedAttr) int {
		if a.hlc != b.hlc {
			return cmpInt(a.hlc, b.hlc)
		}
		return strings.Compare(a.eventID, b.eventID)
	}
	slices.SortFunc(upsert, func(a, b feedAttr) int { return strings.Compare(a.eventID, b.eventID) })
	up := newRowset(text("event_id"), text("subject"), text("customer"), text("kind"), integer("hlc"), integer("amount"), text("store"), text("channel"))
	for _, a := range upsert {
		up.add(a.eventID, a.subject, a.customer, a.kind, a.hlc, a.amount, a.store, a.channel)
	}
	err = s.execRows(ctx, tx, up, "r", func(a *args, r string) string {
		return `INSERT INTO cust_feed_attr (event_id, subject, customer, kind, hlc, amount, store, channel)
SELECT event_id, subject, customer, kind, hlc, amount, store, channel FROM ` + r + s.d.inOrder() + `
ON CONFLICT (event_id) DO UPDATE SET subject = excluded.subject, customer = excluded.customer`
	})
	if err != nil {
		return nil, fmt.Errorf("purchase feed: attributions: %w", err)
	}
	if err := s.deleteByDigest(ctx, tx, "cust_feed_attr", "event_id", drop); err != nil {
		return nil, fmt.Errorf("purchase feed: %w", err)
	}

	// What the log says, in order: each customer who lost a purchase is
	// reset and given back what remains; then the purchases moved to a
	// customer not reset; then the new ones.
	type entry struct {
		op FeedOp
		a  feedAttr
	}
	var out []entry
	resets := sortedKeys(reset)
	for _, c := range resets {
		out = append(out, entry{FeedReset, feedAttr{customer: c}})
		var rest []feedAttr
		rows, err := tx.QueryContext(ctx, `SELECT event_id, subject, customer, kind, hlc, amount, store, channel FROM cust_feed_attr WHERE customer = $1`, c)
		if err != nil {
			return nil, fmt.Errorf("purchase feed: remaining purchases: %w", err)
		}
		m := map[string]feedAttr{}
		f := scan(m)
		for rows.Next() {
			if err := f(rows); err != nil {
				rows.Close()
				return nil, fmt.Errorf("purchase feed: remaining purchases: %w", err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("purchase feed: remaining purchases: %w", err)
		}
		for _, a := range m {
			rest = append(rest, a)
		}
		slices.SortFunc(rest, byStamp)
		for _, a := range rest {
			out = append(out, entry{a.op(true), a})
		}
	}
	slices.SortFunc(moved, byStamp)
	for _, a := range moved {
		if !reset[a.customer] {
			out = append(out, entry{a.op(true), a})
		}
	}
	slices.SortFunc(fresh, byStamp)
	for _, a := range fresh {
		out = append(out, entry{a.op(false), a})
	}
	if erased && len(drop) > 0 {
		// The erased purchases' entries lose their customer, under
		// whichever master id they were logged; the resets just appended
		// (an id and nothing else) tell readers to drop what they counted.
		e := newRowset(text("k"))
		for _, id := range sortedUnique(drop) {
			e.add(id)
		}
		err := s.execRows(ctx, tx, e, "r", func(a *args, r string) string {
			return `UPDATE cust_feed SET customer = '' WHERE op <> 'reset' AND event_id IN (SELECT k FROM ` + r + `)`
		})
		if err != nil {
			return nil, fmt.Errorf("purchase feed: anonymise: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	var named []string
	for _, e := range out {
		named = append(named, e.a.customer)
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `UPDATE cust_feed_head SET pos = pos + $1 WHERE id = 1 RETURNING pos`, len(out)).Scan(&last); err != nil {
		return nil, fmt.Errorf("purchase feed: head: %w", err)
	}
	log := newRowset(integer("pos"), text("op"), text("customer"), text("event_id"), integer("hlc"), integer("amount"), text("store"), text("channel"))
	first := last - int64(len(out)) + 1
	for i, e := range out {
		log.add(first+int64(i), string(e.op), e.a.customer, e.a.eventID, e.a.hlc, e.a.amount, e.a.store, e.a.channel)
	}
	err = s.execRows(ctx, tx, log, "r", func(a *args, r string) string {
		return `INSERT INTO cust_feed (pos, op, customer, event_id, hlc, amount, store, channel) SELECT pos, op, customer, event_id, hlc, amount, store, channel FROM ` + r + s.d.inOrder()
	})
	if err != nil {
		return nil, fmt.Errorf("purchase feed: append: %w", err)
	}
	return sortedUnique(named), nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// movedDigests are the identifiers a graph change moved or removed: the
// subjects whose purchases may have changed customer.
func movedDigests(ch identity.Changes) []string {
	out := make([]string, 0, len(ch.Moves))
	for _, m := range ch.Moves {
		out = append(out, m.Identifier.Value)
	}
	return out
}
