package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/identity"
)

// The identify benchmark's history, loaded fast: applying 10 million
// identifiers took half an hour, so the benchmark could not be run at
// the sizes that matter. loadIdentifyHistory writes what applying the
// history's events would (TestIdentifyLoaderMatchesApply checks it
// against apply): the rows of the graph, written by the apply's own
// copyGraph from the graph's changes (every shopper is new, so there is
// nothing to load), the digest log by the apply's logDigests, and the
// devices' progress. With bulk set, the customer tables' indexes are
// dropped first and built again after, as a restore would: the indexes
// then start packed, in key order, rather than as random inserts leave
// them.

// loadIdentifyHistory writes the effect of applying l's events [from, to)
// in batches of batch, as identifyLoad.apply would.
func loadIdentifyHistory(tb testing.TB, s *Store, l *identifyLoad, from, to, batch int, bulk bool) {
	tb.Helper()
	ctx := context.Background()
	var rebuild []string
	if bulk {
		rebuild = dropCustomerIndexes(tb, s)
	}
	type devState struct {
		store, name   string
		epoch, seq    uint64
		applied, last int64
	}
	devs := map[string]*devState{}
	for lo := from; lo < to; lo += batch {
		hi := min(lo+batch, to)
		conn, err := s.w.Conn(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		var (
			b    identity.Batch
			obs  []identity.Observation
			seqs = map[string]int64{}
			ids  = map[string]custID{}
		)
		for i := lo; i < hi; i++ {
			env := l.event(i)
			l.seq++
			r, err := s.readCustomer(&env)
			if err != nil {
				tb.Fatal(err)
			}
			r.streamSeq = int64(l.seq)
			seqs[r.stamp.ID] = r.streamSeq
			for _, c := range r.ids {
				ids[c.digest] = c
			}
			b.Observations = append(b.Observations, r.obs)
			obs = append(obs, r.obs)
			k := env.Origin.Store + "/" + env.Origin.Device
			d := devs[k]
			if d == nil {
				d = &devState{store: env.Origin.Store, name: env.Origin.Device, epoch: env.Origin.Epoch}
				devs[k] = d
			}
			d.seq, d.applied, d.last = env.Origin.Seq, d.applied+1, env.HLC.Pack()
		}
		g, err := identity.NewGraph(s.graphPolicy())
		if err != nil {
			tb.Fatal(err)
		}
		ch, err := g.Apply(b)
		if err != nil {
			tb.Fatal(err)
		}
		gl := &graphLoad{g: g, cluster: map[string]string{}, obs: map[string]loadedObs{}}
		if err := s.copyGraph(ctx, tx, conn, obs, seqs, gl.labelsAfter(ch), ch, ids, gl); err != nil {
			tb.Fatalf("load: %v", err)
		}
		var added []string
		for _, m := range ch.Moves {
			added = append(added, m.Identifier.Value)
		}
		nowMS := s.now().UnixMilli()
		if err := s.logDigests(ctx, tx, added, nowMS); err != nil {
			tb.Fatal(err)
		}
		for _, k := range sortedKeys(keysOf(devs)) {
			d := devs[k]
			_, err := tx.ExecContext(ctx, `INSERT INTO device_progress (store, device, epoch, watermark, above, events_applied, dead_lettered, last_event_hlc, last_applied_ms)
VALUES ($1, $2, $3, $4, '', $5, 0, $6, $7)
ON CONFLICT (store, device, epoch) DO UPDATE SET watermark = excluded.watermark, events_applied = excluded.events_applied,
	last_event_hlc = excluded.last_event_hlc, last_applied_ms = excluded.last_applied_ms`,
				d.store, d.name, int64(d.epoch), int64(d.seq), d.applied, d.last, nowMS)
			if err != nil {
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
		conn.Close()
	}
	for _, ddl := range rebuild {
		if _, err := s.w.ExecContext(ctx, ddl); err != nil {
			tb.Fatalf("%s: %v", ddl, err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `ANALYZE cust_identifiers, cust_observations, cust_masters`); err != nil {
		tb.Fatal(err)
	}
}

// warmDigestFilter builds the store's digest filter, as a replica that
// has been running has it: a first build reads the digests a slice per
// batch, and would take the measured batches' place.
func warmDigestFilter(tb testing.TB, s *Store) {
	tb.Helper()
	ctx := context.Background()
	for {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := s.digestsAbsent(ctx, tx, nil); err != nil {
			tb.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
		f := &s.custDigests
		f.mu.Lock()
		done := f.cur != nil && f.next == nil
		f.mu.Unlock()
		if done {
			return
		}
	}
}

// customerTables are the tables loadIdentifyHistory writes in bulk.
var customerTables = []string{"cust_identifiers", "cust_observations", "cust_masters"}

// dropCustomerIndexes drops the customer tables' indexes (primary keys
// too) and returns the statements that build them again.
func dropCustomerIndexes(tb testing.TB, s *Store) []string {
	tb.Helper()
	ctx := context.Background()
	rows, err := s.w.QueryContext(ctx, `SELECT i.tablename, i.indexname, i.indexdef, c.conname IS NOT NULL
FROM pg_indexes i LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
WHERE i.schemaname = current_schema() AND i.tablename = ANY($1) ORDER BY 1, 2`, "{"+strings.Join(customerTables, ",")+"}")
	if err != nil {
		tb.Fatal(err)
	}
	var drop, rebuild []string
	for rows.Next() {
		var table, name, def string
		var constraint bool
		if err := rows.Scan(&table, &name, &def, &constraint); err != nil {
			tb.Fatal(err)
		}
		rebuild = append(rebuild, def)
		if constraint {
			drop = append(drop, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, name))
			rebuild = append(rebuild, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s", table, name, name))
		} else {
			drop = append(drop, "DROP INDEX "+name)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	rows.Close()
	for _, d := range drop {
		if _, err := s.w.ExecContext(ctx, d); err != nil {
			tb.Fatalf("%s: %v", d, err)
		}
	}
	return rebuild
}

// TestIdentifyLoaderMatchesApply checks the benchmark's loader against
// apply: the same events, applied and loaded, leave the same rows (but
// for the clocks of the apply, and sealed values, sealed with a random
// nonce).
func TestIdentifyLoaderMatchesApply(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 20,000 identifiers twice")
	}
	const n = 10_000
	a := withKeys(openPostgres(t))
	(&identifyLoad{devs: map[int]*device{}, w: 1_000_000}).apply(t, a, 0, n, 5000)
	for _, bulk := range []bool{false, true} {
		b := withKeys(openPostgres(t))
		lb := &identifyLoad{devs: map[int]*device{}, w: 1_000_000}
		loadIdentifyHistory(t, b, lb, 0, n, 5000, bulk)
		da, db := dumpTables(t, a), dumpTables(t, b)
		if !bulk {
			for _, table := range sortedKeys(keysOf(da)) {
				if len(da[table]) > 0 {
					t.Logf("%s: %d rows, e.g. %s", table, len(da[table]), da[table][0])
				}
			}
		}
		for _, table := range sortedKeys(keysOf(da)) {
			if !slices.Equal(da[table], db[table]) {
				t.Errorf("bulk %v: %s: applied %d rows, loaded %d; first applied %q, loaded %q", bulk, table, len(da[table]), len(db[table]), first(da[table]), first(db[table]))
			}
		}
		for _, table := range sortedKeys(keysOf(db)) {
			if _, ok := da[table]; !ok {
				t.Errorf("bulk %v: loaded %s, not applied", bulk, table)
			}
		}
		if !bulk {
			continue
		}
		// The indexes built again are those migrations made.
		ia, ib := dumpIndexes(t, a), dumpIndexes(t, b)
		if !slices.Equal(ia, ib) {
			t.Errorf("indexes: applied %v, loaded %v", ia, ib)
		}
		// And the loaded history goes on: the next events apply on it.
		lb.apply(t, b, n, n+1000, 1000)
		var c int
		if err := b.r.QueryRow(`SELECT count(*) FROM cust_identifiers`).Scan(&c); err != nil || c != 2*(n+1000) {
			t.Errorf("after the load, %d identifiers (%v)", c, err)
		}
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// dumpTables returns every non-empty table's rows as text, sorted, with
// clocks of the apply zeroed, sealed values as their length and the
// digest log's generations as their digests, sorted.
func dumpTables(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rows, err := s.r.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string][]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		switch {
		case table == "schema_migrations":
			continue
		case strings.HasSuffix(col, "_ms"):
			col = "0"
		case strings.HasSuffix(col, "_enc"):
			col = "length(" + col + ")"
		case table == "cust_digest_log" && col == "digests":
			col = "length(digests)"
		}
		cols[table] = append(cols[table], col)
	}
	rows.Close()
	out := map[string][]string{}
	for table, cs := range cols {
		rows, err := s.r.QueryContext(ctx, `SELECT concat_ws('|', `+strings.Join(cs, "::text, ")+`::text) FROM `+table)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], r)
		}
		rows.Close()
		slices.Sort(out[table])
	}
	return out
}

func dumpIndexes(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), `SELECT i.indexname, i.indexdef, coalesce((SELECT contype::text FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())), '')
FROM pg_indexes i WHERE i.schemaname = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, def, con string
		if err := rows.Scan(&name, &def, &con); err != nil {
			t.Fatal(err)
		}
		// The schema's name differs between the two stores.
		out = append(out, name+" "+con+" "+strings.ReplaceAll(def, currentSchema(t, s)+".", ""))
	}
	return out
}

func currentSchema(t *testing.T, s *Store) string {
	var sc string
	if err := s.r.QueryRow(`SELECT current_schema()`).Scan(&sc); err != nil {
		t.Fatal(err)
	}
	return sc
}
