package erasure_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/erasure"
	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/cloud/internal/identity/identitytest"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

func st(wall int64, id string) events.Stamp {
	return events.Stamp{HLC: hlc.Timestamp{Wall: wall}, ID: id}
}

func hasher(t testing.TB, versions ...uint32) *identity.Hasher {
	t.Helper()
	var keys []identity.Key
	for _, v := range versions {
		keys = append(keys, identity.Key{Version: v, Secret: bytes.Repeat([]byte{byte(v)}, 32)})
	}
	h, err := identity.NewHasher(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func obs(wall int64, id, rule string, ids ...identity.Identifier) identity.Observation {
	return identity.Observation{Stamp: st(wall, id), Identifiers: ids, Evidence: identity.Evidence{Store: "S1", Device: "pos-1", Rule: rule}}
}

var (
	card  = identity.Identifier{Type: identity.Loyalty, Value: "LC-1"}
	mail  = identity.Identifier{Type: identity.Email, Value: "a@b.example"}
	phone = identity.Identifier{Type: identity.Phone, Value: "+821012345678"}
	other = identity.Identifier{Type: identity.Email, Value: "c@d.example"}
)

// Ensure that the story holds: the customer is erased at the hub,
// a store offline during the erasure drains a week later, and its events
// naming the person are scrubbed (the identify dropped, the sale kept
// anonymous) without bringing the person back; only HQ's reinstatement
// lets later events in.
func TestErase_LateEventsNeverBringThePersonBack(t *testing.T) {
	h := hasher(t, 1)
	g, _ := identity.NewGraph(identity.DefaultPolicy())
	if _, err := g.Apply(identity.Batch{Observations: []identity.Observation{
		obs(100, "e1", "identify", card, mail),
		obs(110, "e2", "sale", card),
		obs(120, "e3", "identify", other),
	}}); err != nil {
		t.Fatal(err)
	}
	id, _ := g.Lookup(card)
	req := erasure.Request{ID: "er-1", Customer: id, Stamp: st(1000, "r1"), Operator: "hq-1"}
	plan, err := erasure.Erase(g, h, req)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Customer != id || !slices.Equal(plan.Identifiers, []identity.Identifier{card, mail}) || len(plan.Tombstones) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	if _, ok := g.Lookup(card); ok {
		t.Fatal("the erased card still has a customer")
	}
	if _, ok := g.Lookup(other); !ok {
		t.Fatal("another customer was erased too")
	}
	reg := erasure.NewRegister(h)
	reg.Add(plan.Tombstones...)
	// A week later: store C's identify (stamped after the erasure: the
	// shopper came in while it was offline), with a new phone number.
	late := obs(1000+7*24*3600*1000, "e9", "identify", card, phone)
	if reg.Admit(late) || erasure.ActionFor("identify") != erasure.Drop {
		t.Fatal("a late identify naming the erased card was admitted")
	}
	if !reg.Names([]identity.Identifier{card}, st(900, "e8")) || erasure.ActionFor("sale") != erasure.Anonymise {
		t.Fatal("a late sale naming the erased card is not anonymised")
	}
	if reg.Admit(obs(50, "e0", "identify", mail)) {
		t.Fatal("an old identify naming the erased address was admitted")
	}
	if !reg.Admit(obs(2000, "e10", "identify", phone)) {
		t.Fatal("an identify naming no erased identifier was refused")
	}
	// A replay of the original events changes nothing either: their ids
	// are known, and they name the person.
	ch, err := g.Apply(identity.Batch{Observations: []identity.Observation{obs(100, "e1", "identify", card, mail)}})
	if err != nil || !ch.Empty() {
		t.Fatalf("a replay changed %+v, %v", ch, err)
	}
	// HQ reinstates the card: events after it are the new relationship;
	// those up to it stay scrubbed.
	const week = 7 * 24 * 3600 * 1000
	reg.Reinstate(erasure.Reinstatement{Digest: h.Digest(card), Stamp: st(2*week, "ri"), Operator: "hq-1"})
	if reg.Admit(obs(2*week-1, "e11", "identify", card)) || reg.Admit(late) {
		t.Fatal("an event before the reinstatement was admitted")
	}
	if !reg.Admit(obs(2*week+1, "e12", "identify", card)) {
		t.Fatal("an event after the reinstatement was refused")
	}
	if !reg.Erased(mail, st(3*week, "x")) {
		t.Fatal("reinstating the card lifted the address")
	}
	// Erasing it again blocks it again, whatever the event's stamp.
	reg.Add(erasure.Tombstone{Digest: h.Digest(card), Erasure: "er-2", Erased: st(4*week, "r2")})
	if reg.Admit(obs(3*week, "e13", "identify", card)) || reg.Admit(obs(5*week, "e14", "identify", card)) {
		t.Fatal("a second erasure does not block")
	}
}

// Ensure that Erase refuses what it cannot do.
func TestErase_Refuses(t *testing.T) {
	h := hasher(t, 1)
	g, _ := identity.NewGraph(identity.DefaultPolicy())
	if _, err := erasure.Erase(g, h, erasure.Request{ID: "er-1", Customer: "nobody", Stamp: st(1, "r"), Operator: "hq"}); !errors.Is(err, erasure.ErrUnknownCustomer) {
		t.Fatalf("unknown customer: %v", err)
	}
	for _, r := range []erasure.Request{
		{Customer: "c", Stamp: st(1, "r"), Operator: "hq"},
		{ID: "e", Stamp: st(1, "r"), Operator: "hq"},
		{ID: "e", Customer: "c", Operator: "hq"},
		{ID: "e", Customer: "c", Stamp: st(1, "r")},
	} {
		if _, err := erasure.Erase(g, h, r); !errors.Is(err, erasure.ErrInvalid) {
			t.Errorf("Erase(%+v) = %v", r, err)
		}
	}
}

// Ensure that tombstones made under an older key still block after the
// key is rotated, and that the register names the versions to keep.
func TestRegister_KeyRotation(t *testing.T) {
	old := hasher(t, 1)
	reg := erasure.NewRegister(hasher(t, 2, 1))
	reg.Add(erasure.Tombstone{Digest: old.Digest(mail), Erasure: "er-1", Erased: st(10, "r")})
	if !reg.Erased(mail, st(20, "e")) {
		t.Fatal("a tombstone under the old key no longer blocks")
	}
	if v := reg.Versions(); !slices.Equal(v, []uint32{1}) || reg.Len() != 1 {
		t.Fatalf("versions %v", v)
	}
}

// Ensure that the register's answers depend only on the set of tombstones
// and reinstatements, against an oracle reading the whole lists.
func TestRegister_AnyOrder(t *testing.T) {
	h := hasher(t, 1)
	ids := []identity.Identifier{card, mail, phone}
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		var ts []erasure.Tombstone
		var rs []erasure.Reinstatement
		for i := range rng.Intn(6) {
			ts = append(ts, erasure.Tombstone{Digest: h.Digest(ids[rng.Intn(3)]), Erasure: fmt.Sprint(i), Erased: st(int64(rng.Intn(20)), fmt.Sprint("r", i))})
		}
		for i := range rng.Intn(4) {
			rs = append(rs, erasure.Reinstatement{Digest: h.Digest(ids[rng.Intn(3)]), Stamp: st(int64(rng.Intn(20)), fmt.Sprint("s", i)), Operator: "hq"})
		}
		oracle := func(id identity.Identifier, at events.Stamp) bool {
			var erased, reinstated events.Stamp
			for _, t := range ts {
				if t.Digest == h.Digest(id) && t.Erased.Compare(erased) > 0 {
					erased = t.Erased
				}
			}
			for _, r := range rs {
				if r.Digest == h.Digest(id) && r.Stamp.Compare(reinstated) > 0 {
					reinstated = r.Stamp
				}
			}
			if erased.ID == "" {
				return false
			}
			return reinstated.Compare(erased) <= 0 || at.Compare(reinstated) <= 0
		}
		for range 4 {
			reg := erasure.NewRegister(h)
			var ops []func()
			for _, t := range ts {
				ops = append(ops, func() { reg.Add(t) })
				if rng.Intn(2) == 0 {
					ops = append(ops, func() { reg.Add(t) })
				}
			}
			for _, r := range rs {
				ops = append(ops, func() { reg.Reinstate(r) })
			}
			rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
			for _, op := range ops {
				op()
			}
			for _, id := range ids {
				for at := int64(0); at <= 21; at++ {
					s := st(at, "e")
					if got, want := reg.Erased(id, s), oracle(id, s); got != want {
						t.Fatalf("seed %d: Erased(%v, %d) = %v, want %v", seed, id, at, got, want)
					}
				}
			}
		}
	}
}

// Ensure that, for random graphs, erasing a customer leaves exactly the
// graph of the observations that do not name it, and that redelivering
// the whole log afterwards, late copies and new events naming the person
// included, through the register changes nothing about the person.
func TestErase_RandomGraphs(t *testing.T) {
	h := hasher(t, 1)
	p := identitytest.Policy()
	for seed := int64(1); seed <= 100; seed++ {
		rng := rand.New(rand.NewSource(seed))
		opts := identitytest.Options{People: 5 + rng.Intn(15), Observations: 20 + rng.Intn(100), Unlinks: rng.Intn(5)}
		log := identitytest.Generate(rng, opts)
		g, _ := identity.NewGraph(p)
		if _, err := g.Apply(identity.Batch{Observations: log.Observations, Unlinks: log.Unlinks}); err != nil {
			t.Fatal(err)
		}
		customers := g.Customers()
		target := customers[rng.Intn(len(customers))]
		plan, err := erasure.Erase(g, h, erasure.Request{ID: "er", Customer: target, Stamp: st(opts.BaseWall+1_000_000, "r"), Operator: "hq"})
		if err != nil {
			t.Fatal(err)
		}
		reg := erasure.NewRegister(h)
		reg.Add(plan.Tombstones...)
		// Redeliver everything, plus late events naming the person.
		redo := slices.Clone(log.Observations)
		for i := range 5 {
			o := log.Observations[rng.Intn(len(log.Observations))]
			o.Stamp = identitytest.Stamp(rng, opts, 1000+i)
			o.Identifiers = append(slices.Clone(o.Identifiers), plan.Identifiers[rng.Intn(len(plan.Identifiers))])
			redo = append(redo, o)
		}
		rng.Shuffle(len(redo), func(i, j int) { redo[i], redo[j] = redo[j], redo[i] })
		var admitted []identity.Observation
		for _, o := range redo {
			if reg.Admit(o) {
				admitted = append(admitted, o)
			}
		}
		if _, err := g.Apply(identity.Batch{Observations: admitted}); err != nil {
			t.Fatal(err)
		}
		for _, id := range plan.Identifiers {
			if _, ok := g.Lookup(id); ok || len(g.Links(id)) != 0 {
				t.Fatalf("seed %d: %v came back", seed, id)
			}
		}
		var kept []identity.Observation
		for _, o := range log.Observations {
			if !reg.Admit(o) {
				continue
			}
			kept = append(kept, o)
		}
		want := identitytest.Oracle(p, kept, log.Unlinks)
		if got := g.Customers(); !slices.Equal(got, want.Customers()) {
			t.Fatalf("seed %d: customers\n got %v\nwant %v", seed, got, want.Customers())
		}
		for id, c := range want.Customer {
			if got, _ := g.Lookup(id); got != c {
				t.Fatalf("seed %d: %v in %q, want %q", seed, id, got, c)
			}
		}
	}
}

// Ensure that an erasure is pending at every store until it answers, and
// done once all have.
func TestProgress(t *testing.T) {
	req := time.UnixMilli(1000)
	receipts := []erasure.Receipt{
		{Store: "S1", Erasure: "er-1", At: time.UnixMilli(1500)},
		{Store: "S1", Erasure: "er-1", At: time.UnixMilli(1400)},
		{Store: "S2", Erasure: "er-0", At: time.UnixMilli(1200)},
	}
	states, done := erasure.Progress("er-1", req, []string{"S3", "S1", "S2", "S1"}, receipts)
	want := []erasure.StoreState{
		{Store: "S1", State: erasure.Done, At: time.UnixMilli(1400)},
		{Store: "S2", State: erasure.Pending, Since: req},
		{Store: "S3", State: erasure.Pending, Since: req},
	}
	if done || !slices.Equal(states, want) {
		t.Fatalf("Progress = %v %v", states, done)
	}
	receipts = append(receipts, erasure.Receipt{Store: "S2", Erasure: "er-1", At: time.UnixMilli(2000)}, erasure.Receipt{Store: "S3", Erasure: "er-1", At: time.UnixMilli(2100)})
	if _, done := erasure.Progress("er-1", req, []string{"S1", "S2", "S3"}, receipts); !done {
		t.Fatal("not done after every store answered")
	}
}
