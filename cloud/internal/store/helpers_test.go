package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/testkit"
)

func openSQLite(t testing.TB) *Store {
	t.Helper()
	return mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
}

// openPostgres opens a store on a fresh PostgreSQL database whose
// statements are watched by identKeyGuard for the test's length. The
// database is a copy of one migrated once (testkit.PostgresClone): the
// migrations themselves are tested on empty schemas by the tests that
// call testkit.Postgres.
func openPostgres(t testing.TB) *Store {
	t.Helper()
	return guardIdentKeys(t, mustOpen(t, migratedPostgres(t)))
}

// migratedPostgres is the DSN of a fresh PostgreSQL database with every
// migration applied.
func migratedPostgres(t testing.TB) string {
	t.Helper()
	h := sha256.New()
	for _, m := range migrations {
		h.Write([]byte(postgres.ddl(m)))
		h.Write([]byte{0})
	}
	return testkit.PostgresClone(t, "store", fmt.Sprintf("%x", h.Sum(nil)[:8]), func(ctx context.Context, dsn string) error {
		s, err := Open(ctx, dsn, nil)
		if err != nil {
			return err
		}
		s.Close()
		return nil
	})
}

func mustOpen(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// beginTx starts a transaction on s's writer for a test that reads
// inside one; end rolls it back (it writes nothing to keep).
func beginTx(t testing.TB, s *Store) (tx *sql.Tx, end func()) {
	t.Helper()
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tx, func() { _ = tx.Rollback() }
}

// forEachStore runs fn against a fresh SQLite file and a fresh PostgreSQL
// schema.
func forEachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

// forEachStoreAtOnce is forEachStore with both at once, for a test whose
// runs share nothing: each has a database of its own, and most of a run's
// time is waiting on it.
func forEachStoreAtOnce(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, openPostgres(t)) })
}

// device emits envelopes with increasing seqs and deterministic ids.
type device struct {
	store, name string
	epoch, seq  uint64
}

func newDevice(store, name string, epoch uint64) *device {
	return &device{store: store, name: name, epoch: epoch}
}

// ev returns the device's next event, stamped at wall ms w.
func (d *device) ev(w int64, k events.Kind, body any) events.Envelope {
	d.seq++
	return d.at(d.seq, w, k, body)
}

// at returns the device's event with a given seq.
func (d *device) at(seq uint64, w int64, k events.Kind, body any) events.Envelope {
	data, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d/%d", d.store, d.name, d.epoch, seq))
	be := binary.BigEndian
	id := fmt.Sprintf("%08x-%04x-7%03x-8%03x-%012x", be.Uint32(h[0:4]), be.Uint16(h[4:6]), be.Uint16(h[6:8])&0xfff,
		be.Uint16(h[8:10])&0xfff, be.Uint64(h[8:16])&(1<<48-1))
	return events.Envelope{
		V:      events.CurrentVersion,
		ID:     id,
		Origin: events.Origin{Store: d.store, Device: d.name, Epoch: d.epoch, Seq: seq},
		HLC:    hlc.Timestamp{Wall: w},
		Kind:   k,
		Data:   data,
	}
}

// stocktakes is the stocktake device of each location, made on first use:
// a store counts its own stock, and only its own.
type stocktakes map[string]*device

func (st stocktakes) ev(w int64, k events.Kind, m events.StockMove) events.Envelope {
	d := st[m.Location]
	if d == nil {
		d = newDevice(m.Location, "stocktake", 1)
		st[m.Location] = d
	}
	return d.ev(w, k, m)
}

func sale(loc string, lines ...events.Line) events.StockMove {
	return events.StockMove{Location: loc, Lines: lines}
}

func rmove(id, loc string, lines ...events.Line) events.ReservationMove {
	return events.ReservationMove{ReservationID: id, Location: loc, Lines: lines}
}

func line(sku string, qty int64) events.Line { return events.Line{SKU: sku, Qty: qty} }

func itemsOf(envs ...events.Envelope) []Item {
	out := make([]Item, len(envs))
	for i, e := range envs {
		raw, _ := json.Marshal(e)
		out[i] = Item{Env: e, Raw: raw}
	}
	return out
}

func apply(t testing.TB, s *Store, envs ...events.Envelope) BatchResult {
	t.Helper()
	res, err := s.ApplyBatch(context.Background(), itemsOf(envs...))
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	return res
}

func stockAt(t testing.TB, s *Store, sku, loc string) Stock {
	t.Helper()
	rows, err := s.StockForSKU(context.Background(), sku)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Location == loc {
			return r
		}
	}
	return Stock{SKU: sku, Location: loc}
}

// allStock lists every position through keyset pages.
func allStock(t testing.TB, s *Store) map[inventory.Key]Stock {
	t.Helper()
	out := map[inventory.Key]Stock{}
	q := StockQuery{Limit: 1000}
	for {
		page, err := s.ListStock(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page {
			out[inventory.Key{SKU: st.SKU, Location: st.Location}] = st
		}
		if len(page) < q.Limit {
			return out
		}
		last := page[len(page)-1]
		q.AfterSKU, q.AfterLocation = last.SKU, last.Location
	}
}

func openConflicts(t testing.TB, s *Store) map[inventory.Key]Conflict {
	t.Helper()
	cs, err := s.Conflicts(context.Background(), true, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[inventory.Key]Conflict{}
	for _, c := range cs {
		k := inventory.Key{SKU: c.SKU, Location: c.Location}
		if _, dup := out[k]; dup {
			t.Fatalf("two open conflicts for %v", k)
		}
		out[k] = c
	}
	return out
}

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// stringsOf returns a function reading the single text column of a
// query's rows, for a query's two results as they come:
// stringsOf(t)(db.Query(...)).
func stringsOf(t testing.TB) func(*sql.Rows, error) []string {
	return func(rows *sql.Rows, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}
