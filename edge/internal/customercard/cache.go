// Package customercard is the store agent's side of the customer
// protocol (shared/syncproto): the card a till shows when a shopper
// identifies, and the erasures the store must carry out.
//
// Cards: Lookup asks the hub (a store-scoped request: the hub answers only
// about shoppers who identified at this store) and keeps what it got in a
// bbolt file for a short time (TTL, 15 minutes by default). When the hub
// cannot be reached, Lookup answers from that file, saying so (Source
// "cache" and when the card was fetched); a card older than the TTL is
// never shown, and Run deletes it. Nothing is pushed to the store: the
// file only ever holds shoppers who identified at this till recently.
//
// The file indexes cards by a keyed hash of the identifiers the till sent
// (HMAC-SHA-256 under a random key kept in the file), not by the raw
// values, and no log line carries an identifier or a card.
//
// Erasures (Eraser): the hub writes a notice per store into the erasure
// bucket; the agent reads its own, and for each one, durably and in this
// order, redone from the step it reached after a crash:
//  1. records it (pending) and purges the erased customer's cards, keeping
//     the hashes of the identifiers they were looked up by;
//  2. finds the person's events still in the outbox: it collects the
//     identifiers pending events name, keeps those whose hash is one of
//     the purged cards', and asks the hub which of the others the erasure
//     names (the hub keeps only keyed digests of an erased person's
//     identifiers, under a key that never leaves it, so only the hub can
//     tell), then scrubs those events in one outbox transaction
//     (ScrubBody: a sale keeps its lines, an identify keeps nothing);
//  3. sends the hub its receipt, and records the erasure done.
//
// Sharp edges: an event appended between the collection and the scrub
// naming the person by a form of an identifier not seen before is not
// scrubbed, nor is anything the uplink published before the scrub; the hub
// scrubs both on apply (erasure tombstones). Each device of a store
// carries an erasure out for its own outbox; the hub counts the store done
// with the first receipt.
package customercard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Errors callers branch on.
var (
	// ErrNotFound: the hub knows no shopper with these identifiers at this
	// store.
	ErrNotFound = errors.New("customercard: no such customer at this store")
	// ErrInvalid: the identifiers cannot be read (the hub or the agent
	// said so).
	ErrInvalid = errors.New("customercard: invalid identifiers")
	// ErrUnavailable: the hub cannot be reached and no card fresh enough
	// is cached.
	ErrUnavailable = errors.New("customercard: the hub cannot be reached and no recent card is cached")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("customercard: closed")
	// ErrInvalidOption is returned by Open.
	ErrInvalidOption = errors.New("customercard: invalid option")
	// ErrLocked is returned by Open when another process has the file.
	ErrLocked = errors.New("customercard: the file is in use by another process")
)

// DefaultTTL is how long a card is kept.
const DefaultTTL = 15 * time.Minute

// Buckets of the file.
const (
	bucketMeta     = "meta"
	bucketCards    = "cards"    // customer id -> cardRecord
	bucketKeys     = "keys"     // identifier hash -> customer id
	bucketErasures = "erasures" // erasure id -> Erasure
	bucketErased   = "erased"   // customer id -> erasure id: never cached again
	metaSecret     = "secret"
)

// Options configures a Cache.
type Options struct {
	// Path of the bbolt file (created 0600, its directory 0700).
	Path string
	// TTL is how long a card is kept and may be shown offline (default
	// DefaultTTL).
	TTL time.Duration
	// Now is the wall clock (tests).
	Now    func() time.Time
	Logger *slog.Logger
}

// Cache is the agent's bbolt file of cards and erasures. It is safe for
// concurrent use.
type Cache struct {
	o      Options
	db     *bolt.DB
	secret []byte
	log    *slog.Logger
	mu     sync.Mutex // guards closed
	closed bool
	// qmu guards closing and sends on puts (never held by the writer).
	qmu     sync.Mutex
	closing bool

	// Cards from the hub are written by one goroutine, several to a
	// transaction, after the till has its answer: an fsync per lookup
	// would triple the till's wait.
	puts    chan putReq
	writerW sync.WaitGroup
}

// putReq is a card to keep, or (done set, card empty) a flush.
type putReq struct {
	card syncproto.Card
	ids  map[string]string
	at   time.Time
	done chan struct{}
}

// maxQueuedPuts bounds the cards waiting to be written; past it a card
// is not cached (the till has it; only an offline answer would miss it).
const maxQueuedPuts = 1024

type cardRecord struct {
	Card      syncproto.Card `json:"card"`
	FetchedMS int64          `json:"fetched_ms"`
	// Keys are the identifier hashes (hex) that point to this card.
	Keys []string `json:"keys"`
}

// Erasure states, in order.
const (
	StatePending  = "pending"  // recorded; cards not purged yet
	StatePurged   = "purged"   // cards purged; outbox not scrubbed yet
	StateScrubbed = "scrubbed" // outbox scrubbed; receipt not sent yet
	StateDone     = "done"     // the hub has the receipt
)

// Erasure is what the agent keeps of an erasure notice.
type Erasure struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	State    string `json:"state"`
	SeenMS   int64  `json:"seen_ms"`
	// PurgedKeys are the identifier hashes of the purged cards (hex).
	PurgedKeys     []string `json:"purged_keys,omitempty"`
	CardsPurged    int      `json:"cards_purged"`
	EventsScrubbed int      `json:"events_scrubbed"`
	DoneMS         int64    `json:"done_ms,omitempty"`
}

// Open opens (or creates) the file.
func Open(o Options) (*Cache, error) {
	if o.Path == "" {
		return nil, fmt.Errorf("%w: Path is required", ErrInvalidOption)
	}
	if o.TTL < 0 {
		return nil, fmt.Errorf("%w: TTL %v", ErrInvalidOption, o.TTL)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("customercard: %w", err)
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, o.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("customercard: open %s: %w", o.Path, err)
	}
	c := &Cache{o: o, db: db, log: o.Logger}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketMeta, bucketCards, bucketKeys, bucketErasures, bucketErased} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		m := tx.Bucket([]byte(bucketMeta))
		if s := m.Get([]byte(metaSecret)); len(s) == 32 {
			c.secret = append([]byte(nil), s...)
			return nil
		}
		c.secret = make([]byte, 32)
		if _, err := rand.Read(c.secret); err != nil {
			return err
		}
		return m.Put([]byte(metaSecret), c.secret)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("customercard: %s: %w", o.Path, err)
	}
	c.puts = make(chan putReq, maxQueuedPuts)
	c.writerW.Add(1)
	go c.writer()
	return c, nil
}

// writer writes queued cards, as many as are queued to one transaction.
func (c *Cache) writer() {
	defer c.writerW.Done()
	for first := range c.puts {
		batch := []putReq{first}
	drain:
		for len(batch) < 256 {
			select {
			case r, ok := <-c.puts:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if err := c.update(func(tx *bolt.Tx) error {
			for _, r := range batch {
				if r.done == nil {
					if err := c.putTx(tx, r.card, r.ids, r.at); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil && !errors.Is(err, ErrClosed) {
			c.log.Warn("customercard: caching cards", "cards", len(batch), "err", err)
		}
		for _, r := range batch {
			if r.done != nil {
				close(r.done)
			}
		}
	}
}

// putAsync queues card for writing; false when the queue is full.
func (c *Cache) putAsync(card syncproto.Card, ids map[string]string) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closing {
		return false
	}
	select {
	case c.puts <- putReq{card: card, ids: ids, at: c.o.Now()}:
		return true
	default:
		return false
	}
}

// flush waits until the cards queued so far are written.
func (c *Cache) flush() {
	done := make(chan struct{})
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return
	}
	c.puts <- putReq{done: done}
	c.qmu.Unlock()
	<-done
}

// Close writes the queued cards and closes the file.
func (c *Cache) Close() error {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return nil
	}
	c.closing = true
	close(c.puts)
	c.qmu.Unlock()
	c.writerW.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return c.db.Close()
}

// TTL is how long a card is kept.
func (c *Cache) TTL() time.Duration { return c.o.TTL }

// Key is the hash an identifier is indexed and compared by in this file:
// HMAC-SHA-256 under the file's key of its type and its value, lightly
// canonicalised (trimmed; a loyalty card without spaces and upper-cased,
// an e-mail lower-cased) so that the forms one till types match. It is
// not the hub's normalisation, and need not be: a miss only sends the
// question to the hub.
func (c *Cache) Key(id syncproto.Identifier) string {
	v := strings.TrimSpace(id.Value)
	switch id.Type {
	case "loyalty":
		v = strings.ToUpper(strings.ReplaceAll(v, " ", ""))
	case "email":
		v = strings.ToLower(v)
	}
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(id.Type))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return fmt.Sprintf("%x", m.Sum(nil))
}

func (c *Cache) keysOf(ids map[string]string) []string {
	out := make([]string, 0, len(ids))
	for t, v := range ids {
		out = append(out, c.Key(syncproto.Identifier{Type: t, Value: v}))
	}
	return out
}

func (c *Cache) update(fn func(*bolt.Tx) error) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := c.db.Update(fn); err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		return fmt.Errorf("customercard: %w", err)
	}
	return nil
}

func (c *Cache) view(fn func(*bolt.Tx) error) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := c.db.View(fn); err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		return fmt.Errorf("customercard: %w", err)
	}
	return nil
}

// put keeps card, found by ids, fetched now (synchronously).
func (c *Cache) put(card syncproto.Card, ids map[string]string) error {
	now := c.o.Now()
	return c.update(func(tx *bolt.Tx) error { return c.putTx(tx, card, ids, now) })
}

// putTx keeps card, found by ids, fetched at now: ids point to it from
// now on, as do the identifiers it was found by before. A customer an
// erasure named is never kept (a lookup answered just before the erasure
// may be written just after it).
func (c *Cache) putTx(tx *bolt.Tx, card syncproto.Card, ids map[string]string, now time.Time) error {
	if tx.Bucket([]byte(bucketErased)).Get([]byte(card.Customer)) != nil {
		return nil
	}
	cb, kb := tx.Bucket([]byte(bucketCards)), tx.Bucket([]byte(bucketKeys))
	rec := cardRecord{Card: card, FetchedMS: now.UnixMilli()}
	if old := cb.Get([]byte(card.Customer)); old != nil {
		var o cardRecord
		if json.Unmarshal(old, &o) == nil {
			rec.Keys = o.Keys
		}
	}
	for _, k := range c.keysOf(ids) {
		// A key that pointed to another customer (a card handed on)
		// points here now; that customer's record keeps a stale key,
		// which get ignores.
		if err := kb.Put([]byte(k), []byte(card.Customer)); err != nil {
			return err
		}
		if !contains(rec.Keys, k) {
			rec.Keys = append(rec.Keys, k)
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return cb.Put([]byte(card.Customer), b)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// get returns the cached card any of ids points to, if it was fetched
// within the TTL.
func (c *Cache) get(ids map[string]string) (syncproto.Card, time.Time, bool, error) {
	var (
		card    syncproto.Card
		fetched time.Time
		found   bool
	)
	cutoff := c.o.Now().Add(-c.o.TTL)
	err := c.view(func(tx *bolt.Tx) error {
		cb, kb := tx.Bucket([]byte(bucketCards)), tx.Bucket([]byte(bucketKeys))
		for _, k := range c.keysOf(ids) {
			cust := kb.Get([]byte(k))
			if cust == nil {
				continue
			}
			var rec cardRecord
			v := cb.Get(cust)
			if v == nil || json.Unmarshal(v, &rec) != nil || !contains(rec.Keys, k) {
				continue
			}
			at := time.UnixMilli(rec.FetchedMS)
			if at.Before(cutoff) {
				continue
			}
			card, fetched, found = rec.Card, at, true
			return nil
		}
		return nil
	})
	return card, fetched, found, err
}

// forget drops what ids point to: the hub no longer gives a card for them.
func (c *Cache) forget(ids map[string]string) error {
	return c.update(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte(bucketKeys))
		for _, k := range c.keysOf(ids) {
			if err := kb.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// purgeCustomer deletes customer's card and every key pointing to it, in
// tx, and returns the keys.
func purgeCustomer(tx *bolt.Tx, customer string) ([]string, bool, error) {
	cb, kb := tx.Bucket([]byte(bucketCards)), tx.Bucket([]byte(bucketKeys))
	v := cb.Get([]byte(customer))
	if v == nil {
		return nil, false, nil
	}
	var rec cardRecord
	_ = json.Unmarshal(v, &rec)
	for _, k := range rec.Keys {
		if string(kb.Get([]byte(k))) == customer {
			if err := kb.Delete([]byte(k)); err != nil {
				return nil, false, err
			}
		}
	}
	return rec.Keys, true, cb.Delete([]byte(customer))
}

// KeepErasures is how long a carried-out erasure is remembered: longer
// than the hub keeps its notice (downsync.ErasureMaxAge), so a notice is
// never carried out twice (which would be harmless: every step may be
// redone).
const KeepErasures = downsync.ErasureMaxAge + 30*24*time.Hour

// Sweep deletes the cards older than the TTL, keys pointing nowhere, and
// erasures carried out longer than KeepErasures ago; it returns how many
// cards it deleted.
func (c *Cache) Sweep() (int, error) {
	now := c.o.Now()
	cutoff := now.Add(-c.o.TTL).UnixMilli()
	forgetBefore := now.Add(-KeepErasures).UnixMilli()
	n := 0
	err := c.update(func(tx *bolt.Tx) error {
		eb, xb := tx.Bucket([]byte(bucketErasures)), tx.Bucket([]byte(bucketErased))
		var gone []Erasure
		if err := eb.ForEach(func(_, v []byte) error {
			var e Erasure
			if json.Unmarshal(v, &e) == nil && e.State == StateDone && e.DoneMS < forgetBefore {
				gone = append(gone, e)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, e := range gone {
			if err := eb.Delete([]byte(e.ID)); err != nil {
				return err
			}
			if string(xb.Get([]byte(e.Customer))) == e.ID {
				if err := xb.Delete([]byte(e.Customer)); err != nil {
					return err
				}
			}
		}
		cb, kb := tx.Bucket([]byte(bucketCards)), tx.Bucket([]byte(bucketKeys))
		var old []string
		if err := cb.ForEach(func(k, v []byte) error {
			var rec cardRecord
			if json.Unmarshal(v, &rec) != nil || rec.FetchedMS < cutoff {
				old = append(old, string(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, cust := range old {
			if _, _, err := purgeCustomer(tx, cust); err != nil {
				return err
			}
		}
		n = len(old)
		var dangling [][]byte
		if err := kb.ForEach(func(k, v []byte) error {
			if cb.Get(v) == nil {
				dangling = append(dangling, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range dangling {
			if err := kb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Stats counts what the file holds.
type Stats struct {
	Cards           int `json:"cards"`
	ErasuresPending int `json:"erasures_pending"`
	ErasuresDone    int `json:"erasures_done"`
}

// Stats returns the counts.
func (c *Cache) Stats() Stats {
	var s Stats
	_ = c.view(func(tx *bolt.Tx) error {
		s.Cards = tx.Bucket([]byte(bucketCards)).Stats().KeyN
		return tx.Bucket([]byte(bucketErasures)).ForEach(func(_, v []byte) error {
			var e Erasure
			if json.Unmarshal(v, &e) == nil && e.State == StateDone {
				s.ErasuresDone++
			} else {
				s.ErasuresPending++
			}
			return nil
		})
	})
	return s
}

// NoteErasure records a notice: pending, unless it is known. It reports
// whether the erasure still has work to do.
func (c *Cache) NoteErasure(n syncproto.ErasureNotice) (bool, error) {
	todo := true
	err := c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketErasures))
		if v := b.Get([]byte(n.Erasure)); v != nil {
			var e Erasure
			if json.Unmarshal(v, &e) == nil {
				todo = e.State != StateDone
				return nil
			}
		}
		if err := tx.Bucket([]byte(bucketErased)).Put([]byte(n.Customer), []byte(n.Erasure)); err != nil {
			return err
		}
		return putErasure(b, Erasure{ID: n.Erasure, Customer: n.Customer, State: StatePending, SeenMS: c.o.Now().UnixMilli()})
	})
	return todo, err
}

func putErasure(b *bolt.Bucket, e Erasure) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Put([]byte(e.ID), v)
}

// Erasures lists the erasures not done yet, oldest first.
func (c *Cache) Erasures() ([]Erasure, error) {
	var out []Erasure
	err := c.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketErasures)).ForEach(func(_, v []byte) error {
			var e Erasure
			if json.Unmarshal(v, &e) == nil && e.State != StateDone {
				out = append(out, e)
			}
			return nil
		})
	})
	sortBySeen(out)
	return out, err
}

func sortBySeen(es []Erasure) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].SeenMS < es[j-1].SeenMS; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// Erasure returns the record of erasure id.
func (c *Cache) Erasure(id string) (Erasure, bool, error) {
	var (
		e  Erasure
		ok bool
	)
	err := c.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(bucketErasures)).Get([]byte(id)); v != nil {
			ok = json.Unmarshal(v, &e) == nil
		}
		return nil
	})
	return e, ok, err
}

// advance applies fn to erasure id's record and stores it, in one
// transaction with whatever fn does to tx.
func (c *Cache) advance(id string, fn func(tx *bolt.Tx, e *Erasure) error) (Erasure, error) {
	var e Erasure
	err := c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketErasures))
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("erasure %s is not recorded", id)
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		if err := fn(tx, &e); err != nil {
			return err
		}
		return putErasure(b, e)
	})
	return e, err
}

// purgeFor purges erasure id's customer's cards and records the keys
// they were found by, in one transaction: state purged.
func (c *Cache) purgeFor(id string) (Erasure, error) {
	return c.advance(id, func(tx *bolt.Tx, e *Erasure) error {
		if e.State != StatePending {
			return nil
		}
		keys, found, err := purgeCustomer(tx, e.Customer)
		if err != nil {
			return err
		}
		if found {
			e.CardsPurged++
		}
		e.PurgedKeys, e.State = keys, StatePurged
		return nil
	})
}

func (c *Cache) markScrubbed(id string, events int) (Erasure, error) {
	return c.advance(id, func(_ *bolt.Tx, e *Erasure) error {
		if e.State == StatePurged {
			e.State, e.EventsScrubbed = StateScrubbed, events
		}
		return nil
	})
}

func (c *Cache) markDone(id string) (Erasure, error) {
	return c.advance(id, func(_ *bolt.Tx, e *Erasure) error {
		e.State, e.DoneMS, e.PurgedKeys = StateDone, c.o.Now().UnixMilli(), nil
		return nil
	})
}
