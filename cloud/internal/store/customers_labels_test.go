package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
)

// storedEvidence reads every observation not forgotten (with its cluster
// label) and every unlink the store holds.
func storedEvidence(t *testing.T, s *Store) (identity.Batch, map[string]string) {
	t.Helper()
	var b identity.Batch
	labels := map[string]string{}
	rows, err := s.r.Query(`SELECT event_id, hlc, ids, store, device, rule, operator, cluster FROM cust_observations WHERE forgotten = 0`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			id, ids, c string
			h          int64
			ev         identity.Evidence
		)
		if err := rows.Scan(&id, &h, &ids, &ev.Store, &ev.Device, &ev.Rule, &ev.Operator, &c); err != nil {
			t.Fatal(err)
		}
		b.Observations = append(b.Observations, identity.Observation{Stamp: stampOf(h, id), Identifiers: decodeObsIDs(ids), Evidence: ev})
		labels[id] = c
	}
	rows.Close()
	rows, err = s.r.Query(`SELECT id, observation, hlc, operator, reason, restore FROM cust_unlinks`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			u       identity.Unlink
			id      string
			h, rest int64
		)
		if err := rows.Scan(&id, &u.Observation, &h, &u.Operator, &u.Reason, &rest); err != nil {
			t.Fatal(err)
		}
		u.Stamp, u.Restore = stampOf(h, id), rest != 0
		b.Unlinks = append(b.Unlinks, u)
	}
	rows.Close()
	return b, labels
}

// checkStoredGraph fails t unless the store's identifier rows are what
// the whole graph of its evidence makes of them, every live observation
// carries its identifiers' cluster label, and the postings are exactly
// the unmerged observations' identifiers.
func checkStoredGraph(t *testing.T, s *Store) {
	t.Helper()
	b, labels := storedEvidence(t, s)
	g, err := identity.NewGraph(s.graphPolicy())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := g.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	cluster := map[string]string{}
	for _, m := range ch.Moves {
		want[m.Identifier.Value] = m.To + " " + m.Via + " " + m.Cluster
		cluster[m.Identifier.Value] = m.Cluster
	}
	rows, err := s.r.Query(`SELECT digest, customer, via, cluster FROM cust_identifiers WHERE customer <> ''`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var d, c, v, l string
		if err := rows.Scan(&d, &c, &v, &l); err != nil {
			t.Fatal(err)
		}
		got[d] = c + " " + v + " " + l
	}
	rows.Close()
	if !reflectDeepEqual(got, want) {
		t.Fatalf("identifiers stored:\n%v\nthe evidence makes:\n%v", got, want)
	}
	// Each customer's identifiers, as read through its anchor's cluster.
	members := map[string][]string{}
	for _, m := range ch.Moves {
		if m.To != "" {
			members[m.To] = append(members[m.To], m.Identifier.Value)
		}
	}
	for c, ds := range members {
		rows, err := s.customerIdentifiers(context.Background(), s.r, []string{c})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.digest)
		}
		if slices.Sort(ds); !reflectDeepEqual(got, ds) {
			t.Fatalf("customer %s: identifiers %v, want %v", c, got, ds)
		}
	}
	dead := map[string]bool{}
	for _, u := range b.Unlinks {
		dead[u.Observation] = !u.Restore
	}
	wantPosted := map[[2]string]bool{}
	for _, o := range b.Observations {
		if _, unlinked := dead[o.ID()]; unlinked {
			for _, id := range o.Identifiers {
				wantPosted[[2]string{id.Value, o.ID()}] = true
			}
		}
		if dead[o.ID()] {
			continue
		}
		for _, id := range o.Identifiers {
			if c := cluster[id.Value]; c != labels[o.ID()] {
				t.Fatalf("observation %s labelled %q, its identifier %s is in cluster %q", o.ID(), labels[o.ID()], id.Value, c)
			}
		}
	}
	rows, err = s.r.Query(`SELECT p.digest, p.event_id FROM cust_postings p JOIN cust_observations o ON o.event_id = p.event_id WHERE o.forgotten = 0`)
	if err != nil {
		t.Fatal(err)
	}
	posted := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			t.Fatal(err)
		}
		posted[k] = true
	}
	rows.Close()
	if !reflectDeepEqual(posted, wantPosted) {
		t.Fatalf("postings %v, want the unmerged observations' %v", posted, wantPosted)
	}
}

// Ensure that, through identify events in any batches, unmerges, further
// events linking the undone sides again and erasures, the store's graph
// is the graph of its evidence: observations found by their cluster
// labels (and unmerged ones by their postings) load every cluster whole.
func TestCustomers_ClusterLabelsFollowTheGraph(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(3, 5))
		devs := []*device{newDevice("S1", "pos-1", 1), newDevice("S2", "kiosk-1", 1), newDevice("online", "webshop", 1)}
		types := []string{"loyalty", "email", "phone", "account", "app"}
		val := func(typ string, n int) string {
			switch typ {
			case "email":
				return fmt.Sprintf("p%d@shop.test", n)
			case "phone":
				return fmt.Sprintf("+8210%08d", 20000000+n*7919)
			}
			return fmt.Sprintf("%s-%d", strings.ToUpper(typ[:2]), n)
		}
		w := int64(1000)
		var undone, erased int
		for round := 0; round < 12; round++ {
			var envs []events.Envelope
			for i := 0; i < 15; i++ {
				ids := map[string]string{}
				for k := 1 + rng.IntN(3); k > 0; k-- {
					typ := types[rng.IntN(len(types))]
					ids[typ] = val(typ, rng.IntN(30))
				}
				w += int64(rng.IntN(50))
				// Some arrive late: older than what the hub holds.
				at := w
				if rng.IntN(4) == 0 {
					at = w - int64(rng.IntN(400))
				}
				envs = append(envs, devs[rng.IntN(len(devs))].ev(at, events.KindIdentify, identify(ids)))
			}
			for len(envs) > 0 {
				n := min(len(envs), 1+rng.IntN(8))
				if res, err := s.ApplyBatch(ctx, itemsOf(envs[:n]...)); err != nil || len(res.Deferred) > 0 {
					t.Fatalf("apply: %+v %v", res, err)
				}
				envs = envs[n:]
			}
			checkStoredGraph(t, s)
			customers := stringsOf(t)(s.r.Query(`SELECT DISTINCT customer FROM cust_identifiers WHERE customer <> '' ORDER BY customer`))
			rng.Shuffle(len(customers), func(i, j int) { customers[i], customers[j] = customers[j], customers[i] })
			for _, c := range customers[:min(3, len(customers))] {
				_, err := s.Unmerge(ctx, c, "", "hq", "test")
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				undone++
				checkStoredGraph(t, s)
			}
			if round%4 == 3 && len(customers) > 3 {
				if _, err := s.EraseCustomer(ctx, customers[3], "hq-dpo", ""); err != nil {
					t.Fatal(err)
				}
				erased++
				checkStoredGraph(t, s)
			}
		}
		if undone < 5 || erased < 2 {
			t.Fatalf("the test undid %d merges and erased %d customers: too few to tell", undone, erased)
		}
	})
}

// Ensure that the migration to cluster labels turns a store that posted
// every observation into one whose observations carry their clusters'
// labels, with postings left for the unmerged ones only.
func TestCustomers_ClusterLabelsMigration(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a, b := newDevice("S1", "pos-1", 1), newDevice("online", "webshop", 1)
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			b.ev(2000, events.KindIdentify, identify(map[string]string{"account": "W-9", "phone": "+821034561122"})),
			b.ev(3000, events.KindIdentify, identify(map[string]string{"email": "ann@shop.test", "account": "W-9"})),
			a.ev(4000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-2", "email": "bo@shop.test"})),
		)
		if _, err := s.Unmerge(ctx, find(t, s, "account:W-9"), "", "hq", ""); err != nil {
			t.Fatal(err)
		}
		var mig string
		for _, m := range migrations {
			if strings.Contains(m, "CREATE INDEX cust_observations_by_cluster") {
				mig = m
			}
		}
		if mig == "" {
			t.Fatal("no migration labels the observations")
		}
		// The store as it was before: every observation posted, none
		// labelled.
		bt, _ := storedEvidence(t, s)
		for _, o := range bt.Observations {
			if err := s.postObservation(ctx, s.w, o.ID(), o.Identifiers); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.w.ExecContext(ctx, `UPDATE cust_observations SET cluster = ''`); err != nil {
			t.Fatal(err)
		}
		for _, st := range splitStatements(s.d.ddl(mig)) {
			if strings.HasPrefix(st, "UPDATE") || strings.HasPrefix(st, "DELETE") {
				if _, err := s.w.ExecContext(ctx, st); err != nil {
					t.Fatalf("%v\n%s", err, st)
				}
			}
		}
		checkStoredGraph(t, s)
		// The migrated store goes on: a new link of the undone sides, and
		// an erasure of one of them.
		apply(t, s, a.ev(5000, events.KindIdentify, identify(map[string]string{"phone": "+821034561122", "email": "bo@shop.test"})))
		checkStoredGraph(t, s)
		if _, err := s.EraseCustomer(ctx, find(t, s, "loyalty:LC-1"), "hq-dpo", ""); err != nil {
			t.Fatal(err)
		}
		checkStoredGraph(t, s)
	})
}
