package store

import (
	"errors"
	"strconv"
	"sync"
)

// knownRows remembers the keys of rows this process has seen committed in
// the tables whose rows a batch inserts if missing before it locks them
// (device_progress, carts and reservations: LOCKS.md levels 1, 1b and 2).
// None of those rows is ever deleted, so a batch whose keys are all known
// skips the insert-if-missing and only locks: one round trip less per
// table, in every batch of a device, cart or reservation seen before
// (PostgreSQL only; SQLite has one writer and no such insert).
//
// A key is known only once the transaction that inserted or locked its
// row has committed; other replicas' rows are unknown here until a batch
// of this one has ensured them. A key known wrongly (a row deleted
// behind the hub's back) shows as a row the lock did not find: the batch
// fails with errUnknownRow and is redone with every insert, and what is
// known is forgotten.
type knownRows struct {
	mu   sync.RWMutex
	keys map[string]struct{}
}

// knownMax bounds the keys remembered; past it they are forgotten at once
// (the next batches ensure their rows again, as without the cache).
const knownMax = 1 << 16

// errUnknownRow reports that a row a batch took as known is not there.
var errUnknownRow = errors.New("store: a row taken as known is missing")

func knownKey(table, key string) string { return table + "\x00" + key }

func devKnownKey(k devKey) string {
	return knownKey("device_progress", k.store+"\x00"+k.device+"\x00"+strconv.FormatUint(k.epoch, 10))
}

// all reports whether every key is known.
func (c *knownRows) all(keys []string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, k := range keys {
		if _, ok := c.keys[k]; !ok {
			return false
		}
	}
	return true
}

// add records keys whose rows a committed transaction held.
func (c *knownRows) add(keys []string) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys)+len(keys) > knownMax {
		c.keys = make(map[string]struct{}, len(keys))
	}
	for _, k := range keys {
		c.keys[k] = struct{}{}
	}
}

// reset forgets every key.
func (c *knownRows) reset() {
	c.mu.Lock()
	c.keys = nil
	c.mu.Unlock()
}

// mustEnsure says whether the rows named by keys (knownKey) must be
// inserted if missing before they are locked, and records them to be
// known once the transaction commits.
func (t *applyTx) mustEnsure(keys []string) bool {
	if !t.s.d.rowLocks() {
		return false
	}
	t.ensured = append(t.ensured, keys...)
	return t.p.ensureAll || !t.s.known.all(keys)
}
