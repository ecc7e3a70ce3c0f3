package store

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// digestsOfRef returns the digests of a body's identifiers.
func digestsOfRef(t *testing.T, s *Store, ref map[string]string) []string {
	t.Helper()
	ids, err := s.resolveIdentifiers(events.CustomerRef(ref), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range ids {
		out = append(out, c.digest)
	}
	return out
}

// absentNow asks s's filter, under the customers' lock, which of digests
// it holds no row of (nil: the filter is not ready).
func absentNow(t *testing.T, s *Store, digests []string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	tx, end := beginTx(t, s)
	defer end()
	if err := s.lockCustomers(ctx, tx); err != nil {
		t.Fatal(err)
	}
	a, err := s.digestsAbsent(ctx, tx, digests)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func shopper(i int) map[string]string {
	return map[string]string{"loyalty": fmt.Sprintf("LC-%d", i), "email": fmt.Sprintf("shopper%d@shop.test", i)}
}

// Ensure that a replica's digest filter never calls absent a digest
// another replica added (it reads the digest log under the customers'
// lock), calls most new ones absent, rebuilds itself when the log it
// needs was pruned, and that a filter wrong all the same costs a retry,
// never a wrong graph.
func TestCustomers_DigestFilterAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := testDSN(t, openPostgres(t))
	var stores []*Store
	for range 2 {
		s, err := Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, withKeys(s))
	}
	a, b := stores[0], stores[1]
	da, db := newDevice("S1", "pos-1", 1), newDevice("S2", "pos-1", 1)
	apply(t, b, db.ev(1000, events.KindIdentify, identify(shopper(0))))
	if absentNow(t, b, nil) == nil {
		t.Fatal("the filter of a replica that applied a batch is not ready")
	}
	var envs []events.Envelope
	var theirs, fresh []string
	for i := 1; i <= 50; i++ {
		envs = append(envs, da.ev(int64(2000+i), events.KindIdentify, identify(shopper(i))))
		theirs = append(theirs, digestsOfRef(t, a, shopper(i))...)
		fresh = append(fresh, digestsOfRef(t, a, shopper(1000+i))...)
	}
	apply(t, a, envs...)
	got := absentNow(t, b, append(theirs, fresh...))
	for _, d := range theirs {
		if got[d] {
			t.Fatalf("replica b calls absent a digest replica a added")
		}
	}
	if n := len(got); n < len(fresh)*9/10 {
		t.Fatalf("%d of %d new digests called absent", n, len(fresh))
	}
	// b links a's shopper 1 to a phone: one customer.
	apply(t, b, db.ev(3000, events.KindIdentify, identify(map[string]string{"email": "shopper1@shop.test", "phone": "+821034561122"})))
	if find(t, b, "phone:+821034561122") != find(t, b, "loyalty:LC-1") {
		t.Fatal("the phone did not join shopper 1")
	}

	// The log b needs is pruned: b rebuilds from the identifiers.
	apply(t, a, da.ev(4000, events.KindIdentify, identify(shopper(60))))
	// Pruning keeps the last generation, as logDigests does.
	if _, err := a.w.Exec(`DELETE FROM cust_digest_log WHERE gen < (SELECT MAX(gen) FROM cust_digest_log)`); err != nil {
		t.Fatal(err)
	}
	apply(t, a, da.ev(4100, events.KindIdentify, identify(shopper(61))))
	got = absentNow(t, b, append(digestsOfRef(t, a, shopper(60)), digestsOfRef(t, a, shopper(61))...))
	if got == nil {
		got = absentNow(t, b, append(digestsOfRef(t, a, shopper(60)), digestsOfRef(t, a, shopper(61))...))
	}
	if got == nil || len(got) > 0 {
		t.Fatalf("after a pruned log: absent %v", got)
	}

	// A filter past its size goes on answering while a bigger one is
	// built, and is replaced.
	b.custDigests.mu.Lock()
	old := b.custDigests.cur
	old.capacity = 1
	b.custDigests.mu.Unlock()
	if absentNow(t, b, fresh) == nil {
		t.Fatal("no answer while the filter is rebuilt")
	}
	if b.custDigests.cur == old || b.custDigests.next != nil || b.custDigests.cur.capacity < 1<<20 {
		t.Fatal("the full filter was not replaced")
	}
	if got := absentNow(t, b, theirs); len(got) > 0 {
		t.Fatalf("the rebuilt filter calls absent %d digests replica a added", len(got))
	}

	// A filter wrong all the same (every digest absent): the batch's
	// copy finds the row there, and the batch is applied again looking
	// every digest up.
	b.custDigests.mu.Lock()
	clear(b.custDigests.cur.bits)
	b.custDigests.mu.Unlock()
	res := apply(t, b, db.ev(5000, events.KindIdentify, identify(map[string]string{"email": "shopper2@shop.test", "app": "app-2"})))
	if find(t, b, "app:app-2") != find(t, b, "loyalty:LC-2") || len(res.Customers) != 1 {
		t.Fatalf("the app did not join shopper 2: %v", res.Customers)
	}
	checkStoredGraph(t, b)
}
