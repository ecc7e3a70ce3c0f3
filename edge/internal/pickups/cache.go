package pickups

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound is returned by Get for a reservation the cache does not
	// hold.
	ErrNotFound = errors.New("pickup order not found")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("pickup cache closed")
	// ErrLocked is returned by Open when another process (or another Open
	// in this one) holds the file.
	ErrLocked = errors.New("pickup cache file is locked by another process")
	// ErrInvalidOption is returned by Open for unusable Options.
	ErrInvalidOption = errors.New("pickups: invalid option")
)

const (
	// format is the file layout's version; a file of another format is
	// emptied at Open (the next session fills it again).
	format      = 1
	lockTimeout = time.Second
)

var (
	// bucketOrders: reservation id -> PickupDoc JSON.
	bucketOrders = []byte("orders")
	// bucketMeta: the keys below.
	bucketMeta = []byte("meta")

	keyFormat   = []byte("format")    // uint64
	keyStore    = []byte("store")     // the store whose orders the file holds
	keySyncedAt = []byte("synced_at") // int64 unix ns: when a session last caught up
)

// Options configures a Cache.
type Options struct {
	// Path of the bbolt file, created 0600 (with its directory, 0700) if
	// missing.
	Path string
	// Store is this agent's store: the only one whose orders the cache holds.
	Store  string
	Logger *slog.Logger
}

// Cache is the store's pickup orders on disk. It is safe for concurrent
// use; only the Follower writes to it.
//
// Locks: writeMu before mu. writeMu is held across a write transaction and
// the update of st that follows, so st changes in commit order; mu guards
// st for quick readers.
type Cache struct {
	db    *bolt.DB
	store string
	log   *slog.Logger

	writeMu sync.Mutex
	mu      sync.Mutex
	st      Stats
}

// Stats is what the cache holds.
type Stats struct {
	// Orders counts every order held; Open, Collected and Cancelled those
	// in each state (an order in a state this agent does not know is in
	// Orders only).
	Orders, Open, Collected, Cancelled int64
	// SyncedAt is when a session last caught up with the hub and replaced
	// the cached set (zero: never, for this file).
	SyncedAt time.Time
}

func (s *Stats) count(d *downsync.PickupDoc, n int64) {
	s.Orders += n
	switch d.State {
	case downsync.PickupOpen:
		s.Open += n
	case downsync.PickupCollected:
		s.Collected += n
	case downsync.PickupCancelled:
		s.Cancelled += n
	}
}

// Open opens (or creates) the cache file.
func Open(o Options) (*Cache, error) {
	if o.Path == "" {
		return nil, fmt.Errorf("%w: path is required", ErrInvalidOption)
	}
	if err := events.ValidToken(o.Store); err != nil {
		return nil, fmt.Errorf("%w: store %q: %v", ErrInvalidOption, o.Store, err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("pickups: create directory: %w", err)
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: lockTimeout})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: no lock after %s; is another omni-edge running with this data dir?", ErrLocked, o.Path, lockTimeout)
	case err != nil:
		return nil, fmt.Errorf("pickups: open %s: %w (the file may be deleted: the hub sends it again)", o.Path, err)
	}
	c := &Cache{db: db, store: o.Store, log: o.Logger}
	if err := db.Update(c.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("pickups: %s: %w", o.Path, err)
	}
	return c, nil
}

// load empties a file that is new, of another format or of another store,
// and counts what the file holds.
func (c *Cache) load(tx *bolt.Tx) error {
	mb := tx.Bucket(bucketMeta)
	if mb == nil || u64(mb.Get(keyFormat)) != format || string(mb.Get(keyStore)) != c.store {
		if mb != nil {
			c.log.Warn("pickup cache of another format or store: emptying it",
				"format", u64(mb.Get(keyFormat)), "cached_store", string(mb.Get(keyStore)))
		}
		for _, b := range [][]byte{bucketMeta, bucketOrders} {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		mb, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketOrders); err != nil {
			return err
		}
		return errors.Join(mb.Put(keyFormat, binary.BigEndian.AppendUint64(nil, format)), mb.Put(keyStore, []byte(c.store)))
	}
	var st Stats
	if ns := int64(u64(mb.Get(keySyncedAt))); ns != 0 {
		st.SyncedAt = time.Unix(0, ns)
	}
	err := tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
		var d downsync.PickupDoc
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("order %q: %w", k, err)
		}
		st.count(&d, 1)
		return nil
	})
	c.st = st
	return err
}

// Close closes the file. It is idempotent.
func (c *Cache) Close() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("pickups: close: %w", err)
	}
	return nil
}

// Store is the store whose orders the cache holds.
func (c *Cache) Store() string { return c.store }

// Stats returns what the cache holds.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Query selects orders for List.
type Query struct {
	// State keeps only the orders in this state ("" for all).
	State string
	// Limit is the most orders returned (0 for all).
	Limit int
}

// List returns the orders q selects, newest first: by reservation time,
// then by last update, then by reservation id.
func (c *Cache) List(q Query) ([]downsync.PickupDoc, error) {
	out := []downsync.PickupDoc{}
	err := c.view(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			var d downsync.PickupDoc
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("order %q: %w", k, err)
			}
			if q.State == "" || d.State == q.State {
				out = append(out, d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b downsync.PickupDoc) int {
		return cmp.Or(cmp.Compare(b.ReservedMS, a.ReservedMS), cmp.Compare(b.UpdatedMS, a.UpdatedMS),
			cmp.Compare(a.ReservationID, b.ReservationID))
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// Get returns one order by reservation id, or an error wrapping ErrNotFound.
func (c *Cache) Get(reservationID string) (downsync.PickupDoc, error) {
	var d downsync.PickupDoc
	err := c.view(func(b *bolt.Bucket) error {
		v := b.Get([]byte(reservationID))
		if v == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, reservationID)
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

func (c *Cache) view(fn func(orders *bolt.Bucket) error) error {
	err := c.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketOrders)) })
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// change is one message of the bucket, read: a document to hold, or (doc
// nil) a reservation to drop.
type change struct {
	id  string
	doc *downsync.PickupDoc
}

// replace makes docs the whole cached set and records syncedAt, in one
// transaction: until it commits the previous set stays, whole.
func (c *Cache) replace(docs map[string]downsync.PickupDoc, syncedAt time.Time) error {
	var st Stats
	return c.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketOrders); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucketOrders)
		if err != nil {
			return err
		}
		// Sorted keys fill pages sequentially.
		for _, id := range slices.Sorted(maps.Keys(docs)) {
			d := docs[id]
			if err := put(b, &d); err != nil {
				return err
			}
			st.count(&d, 1)
		}
		st.SyncedAt = syncedAt
		return tx.Bucket(bucketMeta).Put(keySyncedAt, binary.BigEndian.AppendUint64(nil, uint64(syncedAt.UnixNano())))
	}, func() { c.st = st })
}

// apply applies live changes in one transaction, ignoring a document older
// than the one held; it returns how many it ignored.
func (c *Cache) apply(changes []change) (ignored int, err error) {
	if len(changes) == 0 {
		return 0, nil
	}
	var delta Stats
	err = c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOrders)
		for _, ch := range changes {
			var held *downsync.PickupDoc
			if v := b.Get([]byte(ch.id)); v != nil {
				held = new(downsync.PickupDoc)
				if err := json.Unmarshal(v, held); err != nil {
					return fmt.Errorf("order %q: %w", ch.id, err)
				}
			}
			switch {
			case ch.doc == nil && held == nil:
				continue
			case ch.doc == nil:
				if err := b.Delete([]byte(ch.id)); err != nil {
					return err
				}
			case held != nil && ch.doc.Version < held.Version:
				ignored++
				continue
			default:
				if err := put(b, ch.doc); err != nil {
					return err
				}
				delta.count(ch.doc, 1)
			}
			if held != nil {
				delta.count(held, -1)
			}
		}
		return nil
	}, func() {
		c.st.Orders += delta.Orders
		c.st.Open += delta.Open
		c.st.Collected += delta.Collected
		c.st.Cancelled += delta.Cancelled
	})
	return ignored, err
}

// update runs fn in a write transaction and, once it has committed,
// committed to change st.
func (c *Cache) update(fn func(*bolt.Tx) error, committed func()) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	err := c.db.Update(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("pickups: write: %w", err)
	}
	c.mu.Lock()
	committed()
	c.mu.Unlock()
	return nil
}

func put(b *bolt.Bucket, d *downsync.PickupDoc) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return b.Put([]byte(d.ReservationID), v)
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
