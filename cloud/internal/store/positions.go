package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
)

// positionCache maps stock positions to their ids. Ids never change and
// positions are never deleted, so an id once committed is right forever,
// for every replica; a replica missing one reads it from the table.
type positionCache struct {
	mu  sync.RWMutex
	ids map[inventory.Key]int64
}

func (c *positionCache) get(k inventory.Key) (int64, bool) {
	c.mu.RLock()
	id, ok := c.ids[k]
	c.mu.RUnlock()
	return id, ok
}

// add records committed ids.
func (c *positionCache) add(ids map[inventory.Key]int64) {
	if len(ids) == 0 {
		return
	}
	c.mu.Lock()
	if c.ids == nil {
		c.ids = make(map[inventory.Key]int64, len(ids))
	}
	for k, id := range ids {
		c.ids[k] = id
	}
	c.mu.Unlock()
}

// resolve makes sure every key has an id in t.ids, creating the positions
// that do not exist yet. New positions are inserted in (sku, location)
// order, before any stock row is locked (LOCKS.md, level 3a); their ids
// reach the store's cache only when the transaction commits, since a
// rollback takes the rows back.
func (t *applyTx) resolve(ctx context.Context, keys []inventory.Key) error {
	var missing []inventory.Key
	for _, k := range keys {
		if _, ok := t.ids[k]; ok {
			continue
		}
		if id, ok := t.s.positions.get(k); ok {
			t.ids[k] = id
			continue
		}
		missing = append(missing, k)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := t.awaitLedger(ctx); err != nil {
		return err
	}
	slices.SortFunc(missing, inventory.Key.Compare)
	missing = slices.Compact(missing)
	found, err := t.s.positionIDs(ctx, t.tx, missing)
	if err != nil {
		return err
	}
	rs := newRowset(text("sku"), text("location"))
	for _, k := range missing {
		if id, ok := found[k]; ok {
			t.ids[k], t.newIDs[k] = id, id
		} else {
			rs.add(k.SKU, k.Location)
		}
	}
	if rs.len() == 0 {
		return nil
	}
	// A replica inserting the same new position at the same time makes
	// this one wait for it (the unique index), then do nothing: the
	// positions still missing afterwards are read again.
	err = t.s.queryRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO stock (sku, location) SELECT sku, location FROM ` + k + t.s.d.inOrder() +
			` ON CONFLICT DO NOTHING RETURNING id, sku, location`
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		var id int64
		if err := rows.Scan(&id, &k.SKU, &k.Location); err != nil {
			return err
		}
		t.ids[k], t.newIDs[k] = id, id
		return nil
	})
	if err != nil {
		return fmt.Errorf("create positions: %w", err)
	}
	var again []inventory.Key
	for _, k := range missing {
		if _, ok := t.ids[k]; !ok {
			again = append(again, k)
		}
	}
	if len(again) == 0 {
		return nil
	}
	found, err = t.s.positionIDs(ctx, t.tx, again)
	if err != nil {
		return err
	}
	for _, k := range again {
		id, ok := found[k]
		if !ok {
			return fmt.Errorf("position %v neither created nor found", k)
		}
		t.ids[k], t.newIDs[k] = id, id
	}
	return nil
}

// positionIDs reads the ids of the keys that exist.
func (s *Store) positionIDs(ctx context.Context, q querier, keys []inventory.Key) (map[inventory.Key]int64, error) {
	out := make(map[inventory.Key]int64, len(keys))
	rs := newRowset(text("sku"), text("location"))
	for _, k := range keys {
		rs.add(k.SKU, k.Location)
	}
	err := s.queryRows(ctx, q, rs, "k", func(a *args, k string) string {
		return `SELECT s.id, s.sku, s.location FROM stock s JOIN ` + k + ` ON s.sku = k.sku AND s.location = k.location`
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		var id int64
		if err := rows.Scan(&id, &k.SKU, &k.Location); err != nil {
			return err
		}
		out[k] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("position ids: %w", err)
	}
	return out, nil
}

// stateCache keeps the state of positions by id, with the version of the
// row each state was read or written as. On SQLite, whose one writer is
// this process (under its lock file), every change to a position is this
// process's own transaction and the cache is always right. On PostgreSQL
// other replicas write the same rows, so a cached state is only a guess:
// the stock applier writes it back only where the row's version is still
// the cached one, and redoes the batch reading every position locked when
// one is not (apply_stock.go, LOCKS.md level 5). Either way it saves
// reading every position a batch touches before writing it. It holds at
// most max positions; the others are read from the table.
type stateCache struct {
	mu  sync.RWMutex
	m   map[int64]stockState
	max int
}

// stockState is a position's state and the version of its row.
type stockState struct {
	pos inventory.Position
	ver int64
}

func newStateCache(max int) *stateCache {
	return &stateCache{m: make(map[int64]stockState), max: max}
}

func (c *stateCache) get(id int64) (stockState, bool) {
	c.mu.RLock()
	p, ok := c.m[id]
	c.mu.RUnlock()
	return p, ok
}

// add records committed states. A state older than the one cached (two
// transactions of this process committing one position in turn, noted
// in the other order) is left out.
func (c *stateCache) add(states map[int64]stockState) {
	if len(states) == 0 {
		return
	}
	c.mu.Lock()
	for id, p := range states {
		if old, ok := c.m[id]; ok {
			if old.ver <= p.ver {
				c.m[id] = p
			}
		} else if len(c.m) < c.max {
			c.m[id] = p
		}
	}
	c.mu.Unlock()
}

// reset forgets every state: after a commit whose outcome is unknown.
func (c *stateCache) reset() {
	c.mu.Lock()
	c.m = make(map[int64]stockState)
	c.mu.Unlock()
}
