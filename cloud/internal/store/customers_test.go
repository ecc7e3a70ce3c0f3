package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/shared/events"
)

// testKeys is one keyring for every store of a test, as replicas share one
// key file.
var testKeys = func() *pii.Keyring {
	k, err := pii.New(pii.Generate())
	if err != nil {
		panic(err)
	}
	return k
}()

func withKeys(s *Store) *Store { s.SetCustomerKeys(testKeys); return s }

func identify(ids map[string]string) events.Identify { return events.Identify{Identifiers: ids} }

func saleBy(loc string, cust map[string]string, lines ...events.Line) events.StockMove {
	m := sale(loc, lines...)
	m.Customer = mustJSON(cust)
	return m
}

func mustJSON(v any) []byte {
	b, err := jsonMarshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func find(t *testing.T, s *Store, identifier string) string {
	t.Helper()
	id, err := s.FindCustomer(context.Background(), identifier, "")
	if err != nil {
		t.Fatalf("find %s: %v", identifier, err)
	}
	return id
}

func view(t *testing.T, s *Store, id string) CustomerView {
	t.Helper()
	v, err := s.Customer(context.Background(), id, nil)
	if err != nil {
		t.Fatalf("customer %s: %v", id, err)
	}
	return v
}

func price(p int64) *int64 { return &p }

// Ensure that identifiers linked at a store and by the web shop make one
// customer, to whom a store sale and an online order are both attributed.
func TestCustomers_OneCustomerAcrossChannels(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		till := newDevice("S1", "pos-1", 1)
		web := newDevice("online", "webshop", 1)
		apply(t, s,
			till.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "lc-1", "email": "Ann.Lee@Shop.test"})),
			web.ev(2000, events.KindIdentify, identify(map[string]string{"email": "ann.lee@shop.test", "account": "W-1"})),
			till.ev(3000, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-1"}, events.Line{SKU: "A", Qty: 2, UnitPrice: price(500)})),
			web.ev(4000, events.KindSale, saleBy("online", map[string]string{"account": "W-1"}, line("B", 1))),
			till.ev(5000, events.KindSale, sale("S1", line("A", 1))), // anonymous
		)
		c := find(t, s, "email:ann.lee@shop.test")
		if got := find(t, s, "loyalty:LC-1"); got != c {
			t.Fatalf("card is customer %s, e-mail %s", got, c)
		}
		if got := find(t, s, "account:W-1"); got != c {
			t.Fatalf("account is customer %s, e-mail %s", got, c)
		}
		v := view(t, s, c)
		if len(v.Identifiers) != 3 || len(v.Purchases) != 2 {
			t.Fatalf("view: %d identifiers, %d purchases: %+v", len(v.Identifiers), len(v.Purchases), v)
		}
		if v.Purchases[0].Location != "online" || v.Purchases[1].Amount != 1000 {
			t.Fatalf("purchases: %+v", v.Purchases)
		}
		if !reflectDeepEqual(v.Stores, []string{"S1", "online"}) {
			t.Fatalf("stores: %v", v.Stores)
		}
		// The web shop's API says the same.
		got, err := s.Identify(ctx, IdentifyRequest{Identifiers: events.CustomerRef{"account": "W-1"}, Source: "webshop"})
		if err != nil || got != c {
			t.Fatalf("identify by API: %s %v, want %s", got, err, c)
		}
		// Placeholders link nothing.
		apply(t, s, till.ev(6000, events.KindIdentify, identify(map[string]string{"loyalty": "0000", "email": "noreply@shop.example"})))
		if _, err := s.FindCustomer(ctx, "loyalty:0000", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("placeholder found: %v", err)
		}
		if _, err := s.FindCustomer(ctx, "shoe:42", ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad identifier: %v", err)
		}
	})
}

// graphSnapshot is the identity graph as stored: identifiers' customers,
// joining observations and clusters, and master ids' anchors.
func graphSnapshot(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT digest, customer, via, cluster FROM cust_identifiers ORDER BY digest`,
	} {
		rows, err := s.r.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b2, c, d string
			if err := rows.Scan(&a, &b2, &c, &d); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s %s %s\n", a, b2, c, d)
		}
		rows.Close()
	}
	return b.String()
}

// Ensure that any order, duplication and batching of identify events
// gives the same graph.
func TestCustomers_AnyOrderSameGraph(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 13))
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
	var log []events.Envelope
	for i := 0; i < 120; i++ {
		ids := map[string]string{}
		for k := 1 + rng.IntN(3); k > 0; k-- {
			typ := types[rng.IntN(len(types))]
			ids[typ] = val(typ, rng.IntN(25))
		}
		d := devs[rng.IntN(len(devs))]
		log = append(log, d.ev(int64(1000+rng.IntN(100000)), events.KindIdentify, identify(ids)))
	}
	var want string
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		apply(t, s, log...)
		want0 := graphSnapshot(t, s)
		if want == "" {
			want = want0
		} else if want0 != want {
			t.Fatal("SQLite and PostgreSQL disagree")
		}
	})
	for round := 0; round < 3; round++ {
		t.Run(fmt.Sprintf("shuffled-%d", round), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s *Store) {
				withKeys(s)
				shuffled := append([]events.Envelope(nil), log...)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				// Duplicates, and batches of random sizes.
				shuffled = append(shuffled, shuffled[:30]...)
				for len(shuffled) > 0 {
					n := min(len(shuffled), 1+rng.IntN(40))
					res, err := s.ApplyBatch(context.Background(), itemsOf(shuffled[:n]...))
					if err != nil {
						t.Fatal(err)
					}
					if len(res.Deferred) > 0 {
						t.Fatalf("deferred %v", res.Deferred)
					}
					shuffled = shuffled[n:]
				}
				if got := graphSnapshot(t, s); got != want {
					t.Fatalf("graph differs after a shuffled replay:\n%s\nwant\n%s", got, want)
				}
			})
		})
	}
}

// comparableView is the part of a view an unmerge must give back exactly.
func comparableView(v CustomerView) CustomerView {
	v.Requested = ""
	// Links and the stores an identifier was seen at are evidence, not
	// data: the undone observation still happened (the web shop did see
	// the e-mail), and the evidence says so.
	v.Stores = nil
	for i := range v.Identifiers {
		v.Identifiers[i].Links = nil
		v.Identifiers[i].Stores = nil
	}
	return v
}

// Ensure that an unmerge gives back exactly the customers there were:
// ids, identifiers, attributes, consent and purchases.
func TestCustomers_UnmergeExact(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a := newDevice("S1", "pos-1", 1)
		b := newDevice("online", "webshop", 1)
		no := false
		yes := true
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			a.ev(1100, events.KindUpdate, events.Update{Customer: events.CustomerRef{"loyalty": "LC-1"}, Fields: map[string]*string{"first_name": strp("Ann"), "tier": strp("gold")}}),
			a.ev(1200, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": "ann@shop.test"}, Purpose: "sms", Granted: &yes, Source: "till"}),
			a.ev(1300, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-1"}, line("A", 1))),
			b.ev(2000, events.KindIdentify, identify(map[string]string{"account": "W-9", "phone": "+821034561122"})),
			b.ev(2100, events.KindUpdate, events.Update{Customer: events.CustomerRef{"account": "W-9"}, Fields: map[string]*string{"first_name": strp("Bo")}}),
			b.ev(2200, events.KindConsent, events.Consent{Customer: events.CustomerRef{"account": "W-9"}, Purpose: "marketing_email", Granted: &no, Source: "web"}),
			b.ev(2300, events.KindSale, saleBy("online", map[string]string{"account": "W-9"}, line("B", 3))),
		)
		ca, cb := find(t, s, "loyalty:LC-1"), find(t, s, "account:W-9")
		if ca == cb {
			t.Fatal("two people are one customer before the merge")
		}
		va, vb := comparableView(view(t, s, ca)), comparableView(view(t, s, cb))
		// The web shop sees the e-mail and the account together: one
		// customer, the older one's id.
		res := apply(t, s, b.ev(3000, events.KindIdentify, identify(map[string]string{"email": "ann@shop.test", "account": "W-9"})))
		m := find(t, s, "account:W-9")
		if !reflectDeepEqual(res.Customers, []string{m}) {
			t.Fatalf("batch result names customers %v, want [%s]", res.Customers, m)
		}
		if m != ca || find(t, s, "loyalty:LC-1") != m {
			t.Fatalf("merged into %s, want %s", m, ca)
		}
		merged := view(t, s, cb) // the absorbed id redirects
		if merged.ID != ca || merged.Requested != cb || len(merged.Identifiers) != 4 || len(merged.Purchases) != 2 || len(merged.Merges) != 1 {
			t.Fatalf("merged view: %+v", merged)
		}
		if merged.Profile["first_name"] != "Bo" || merged.Profile["tier"] != "gold" {
			t.Fatalf("merged profile: %v", merged.Profile)
		}
		changed, err := s.Unmerge(ctx, m, "", "hq-anna", "two people share a family address")
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 2 {
			t.Fatalf("unmerge changed %v", changed)
		}
		// The e-mail goes back to its first customer; the account keeps
		// its own id.
		if got := comparableView(view(t, s, ca)); !reflectDeepEqual(got, va) {
			t.Fatalf("side A after unmerge:\n%+v\nwant\n%+v", got, va)
		}
		if got := comparableView(view(t, s, cb)); !reflectDeepEqual(got, vb) {
			t.Fatalf("side B after unmerge:\n%+v\nwant\n%+v", got, vb)
		}
		if _, err := s.Unmerge(ctx, ca, "", "hq-anna", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unmerge of a customer without merges: %v", err)
		}
		// The evidence shows the undone link.
		undone := false
		for _, id := range view(t, s, ca).Identifiers {
			for _, l := range id.Links {
				undone = undone || l.UndoneBy == "hq-anna"
			}
		}
		if !undone {
			t.Fatal("the undone link is not in the evidence")
		}
		// Erasing one side leaves the other whole, though the undone merge
		// named both.
		if _, err := s.EraseCustomer(ctx, ca, "hq-dpo", ""); err != nil {
			t.Fatal(err)
		}
		if got := comparableView(view(t, s, cb)); !reflectDeepEqual(got, vb) {
			t.Fatalf("side B after erasing side A:\n%+v\nwant\n%+v", got, vb)
		}
	})
}

func strp(s string) *string { return &s }

// Ensure that an opt-out given at one store holds on every channel, over
// an older grant given at another.
func TestCustomers_OptOutHoldsEverywhere(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		a, b := newDevice("S1", "pos-1", 1), newDevice("S2", "kiosk-1", 1)
		yes, no := true, false
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			a.ev(1100, events.KindConsent, events.Consent{Customer: events.CustomerRef{"loyalty": "LC-1"}, Purpose: "marketing_email", Granted: &yes}),
		)
		c := find(t, s, "email:ann@shop.test")
		if !flag(view(t, s, c), "marketing_email") {
			t.Fatal("grant not in force")
		}
		apply(t, s, b.ev(2000, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": "ann@shop.test"}, Purpose: "marketing_email", Granted: &no, Channel: "store", Source: "kiosk", TextVersion: "v2"}))
		if flag(view(t, s, c), "marketing_email") {
			t.Fatal("opt-out at S2 did not hold")
		}
		// An older grant arriving late changes nothing.
		apply(t, s, a.ev(1500, events.KindConsent, events.Consent{Customer: events.CustomerRef{"loyalty": "LC-1"}, Purpose: "marketing_email", Granted: &yes, Channel: "email"}))
		if flag(view(t, s, c), "marketing_email") {
			t.Fatal("a late older grant reopened")
		}
		// HQ's consent through the API is newest.
		if _, err := s.AddConsent(context.Background(), c, ConsentRequest{Purpose: "marketing_email", Granted: &yes, Operator: "hq"}); err != nil {
			t.Fatal(err)
		}
		if !flag(view(t, s, c), "marketing_email") {
			t.Fatal("HQ's grant not in force")
		}
	})
}

func flag(v CustomerView, purpose string) bool {
	for _, f := range v.Flags {
		if f.Purpose == purpose {
			return f.Allowed
		}
	}
	return false
}

// Ensure that an erasure removes the person at the hub, keeps the
// anonymous sales, waits for every known store, and that a late event
// naming the person is scrubbed and never brings them back.
func TestCustomers_Erasure(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a, c := newDevice("S1", "pos-1", 1), newDevice("S3", "pos-1", 1)
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-7", "email": "eve@shop.test"})),
			a.ev(1100, events.KindUpdate, events.Update{Customer: events.CustomerRef{"loyalty": "LC-7"}, Fields: map[string]*string{"first_name": strp("Eve")}}),
			a.ev(1200, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-7"}, line("A", 1))),
			c.ev(1300, events.KindSale, sale("S3", line("A", 1))),
		)
		cust := find(t, s, "loyalty:LC-7")
		if _, err := s.CustomerCard(ctx, "S3", map[string]string{"loyalty": "LC-7"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("card at a store the customer never visited: %v", err)
		}
		card, err := s.CustomerCard(ctx, "S1", map[string]string{"loyalty": "lc-7"})
		if err != nil || card.FirstName != "Eve" || len(card.Purchases) != 1 {
			t.Fatalf("card: %+v %v", card, err)
		}
		eid, err := s.EraseCustomer(ctx, cust, "hq-dpo", "request by e-mail")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindCustomer(ctx, "email:eve@shop.test", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("erased customer found: %v", err)
		}
		if _, err := s.Customer(ctx, cust, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("erased customer's view: %v", err)
		}
		st, err := s.ErasureStatus(ctx, eid)
		if err != nil || st.Done || len(st.Stores) != 2 || st.Stores[0].State != "pending" {
			t.Fatalf("status: %+v %v", st, err)
		}
		// S1 saw the person: it gets the raw values; S3 only hashes.
		p1, err := s.PendingErasures(ctx, "S1")
		if err != nil || len(p1) != 1 || len(p1[0].Identifiers) != 2 || len(p1[0].Hashes) != 2 {
			t.Fatalf("pending at S1: %+v %v", p1, err)
		}
		p3, _ := s.PendingErasures(ctx, "S3")
		if len(p3) != 1 || len(p3[0].Identifiers) != 0 || len(p3[0].Hashes) != 2 {
			t.Fatalf("pending at S3: %+v", p3)
		}
		salt := mustHex(p3[0].Salt)
		if h := ErasureHash(salt, "email", "eve@shop.test"); !containsStr(p3[0].Hashes, h) {
			t.Fatal("S3 cannot match the e-mail it may hold")
		}
		if err := s.AckErasure(ctx, "S1", eid, time.UnixMilli(5000)); err != nil {
			t.Fatal(err)
		}
		st, _ = s.ErasureStatus(ctx, eid)
		if st.Done || st.Stores[0].State != "done" || st.Stores[1].State != "pending" {
			t.Fatalf("status after S1: %+v", st)
		}
		// S3 was offline: its events naming the person arrive late.
		yes := true
		res := apply(t, s,
			c.ev(900, events.KindIdentify, identify(map[string]string{"email": "EVE@shop.test", "phone": "+821055551234"})),
			c.ev(950, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": "eve@shop.test"}, Purpose: "sms", Granted: &yes}),
			c.ev(960, events.KindSale, saleBy("S3", map[string]string{"email": "eve@shop.test"}, line("A", 1))),
		)
		if res.Applied != 3 || res.DeadLettered != 0 {
			t.Fatalf("late events: %+v", res)
		}
		for _, id := range []string{"email:eve@shop.test", "phone:+821055551234"} {
			if _, err := s.FindCustomer(ctx, id, ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s came back: %v", id, err)
			}
		}
		var n int
		s.r.QueryRow(`SELECT count(*) FROM cust_purchases`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d purchases attributed after erasure", n)
		}
		// The sales stay in the books, anonymous.
		stock, _ := s.StockForSKU(ctx, "A")
		var sold int64
		for _, p := range stock {
			sold += p.OnHand
		}
		if sold != -3 {
			t.Fatalf("on hand %d, want -3", sold)
		}
		if err := s.AckErasure(ctx, "S3", eid, time.UnixMilli(9000)); err != nil {
			t.Fatal(err)
		}
		st, _ = s.ErasureStatus(ctx, eid)
		if !st.Done {
			t.Fatalf("status after every store: %+v", st)
		}
		s.r.QueryRow(`SELECT count(*) FROM cust_erasure_identifiers`).Scan(&n)
		if n != 0 {
			t.Fatal("raw identifiers kept after every store answered")
		}
		if err := s.AckErasure(ctx, "S3", "nope", time.Now()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown erasure: %v", err)
		}
	})
}

// Ensure that no raw identifier or attribute is stored in clear.
func TestCustomers_NothingInClear(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		a := newDevice("S1", "pos-1", 1)
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LCSECRET1", "email": "secret.person@shop.test"})),
			a.ev(1100, events.KindUpdate, events.Update{Customer: events.CustomerRef{"loyalty": "LCSECRET1"}, Fields: map[string]*string{"first_name": strp("Secretname")}}),
		)
		for _, table := range []string{"cust_identifiers", "cust_observations", "cust_postings", "cust_masters", "cust_profile", "cust_consent", "dead_letters"} {
			rows, err := s.r.Query(`SELECT * FROM ` + table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for _, v := range vals {
					cell := strings.ToLower(fmt.Sprint(v))
					if b, ok := v.([]byte); ok {
						cell = strings.ToLower(string(b))
					}
					for _, secret := range []string{"lcsecret1", "secret.person", "secretname"} {
						if strings.Contains(cell, secret) {
							t.Fatalf("%s holds %q in clear", table, secret)
						}
					}
				}
			}
			rows.Close()
		}
	})
}

// Ensure that without keys customer events are refused, not stored in
// clear.
func TestCustomers_NoKeys(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	a := newDevice("S1", "pos-1", 1)
	res := apply(t, s, a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1"})))
	if res.DeadLettered != 1 {
		t.Fatalf("%+v", res)
	}
	var n int
	s.r.QueryRow(`SELECT count(*) FROM cust_identifiers`).Scan(&n)
	if n != 0 {
		t.Fatal("identifier stored without keys")
	}
}

var _ = sql.ErrNoRows

func reflectDeepEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

func containsStr(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

func mustHex(s string) []byte {
	b, err := hexDecode(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Ensure that a rotation re-seals every value under the new key, after
// which the old key can go.
func TestCustomers_Rekey(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		f := pii.Generate()
		k1, _ := pii.New(f)
		s.SetCustomerKeys(k1)
		a := newDevice("S1", "pos-1", 1)
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			a.ev(1100, events.KindUpdate, events.Update{Customer: events.CustomerRef{"loyalty": "LC-1"}, Fields: map[string]*string{"first_name": strp("Ann")}}),
		)
		f.AddSealKey()
		k2, _ := pii.New(f)
		s.SetCustomerKeys(k2)
		n, err := s.RekeyCustomers(context.Background(), 1)
		if err != nil || n != 3 {
			t.Fatalf("rekeyed %d: %v", n, err)
		}
		if err := f.DropSealKey(1); err != nil {
			t.Fatal(err)
		}
		k3, _ := pii.New(f)
		s.SetCustomerKeys(k3)
		v := view(t, s, find(t, s, "loyalty:LC-1"))
		if v.Profile["first_name"] != "Ann" || len(v.Identifiers) != 2 {
			t.Fatalf("after rotation: %+v", v)
		}
		if n, _ := s.RekeyCustomers(context.Background(), 0); n != 0 {
			t.Fatalf("second rekey re-sealed %d", n)
		}
	})
}

// Ensure that an identify event delivered again under another origin, in
// a later batch, is applied once: on PostgreSQL its observation's copy
// fails on the key already there and the batch's customer rows are
// upserted instead, the graph the same, and the batch's other (new)
// shopper is kept.
func TestCustomers_SameEventUnderTwoOrigins(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a, b := newDevice("S1", "pos-1", 1), newDevice("S2", "pos-9", 1)
		first := a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-000000001", "email": "one@shop.test"}))
		if _, err := s.ApplyBatch(ctx, itemsOf(first)); err != nil {
			t.Fatal(err)
		}
		c1 := find(t, s, "loyalty:LC-000000001")
		again := first
		again.Origin = b.ev(1000, events.KindIdentify, identify(nil)).Origin
		other := b.ev(1001, events.KindIdentify, identify(map[string]string{"loyalty": "LC-000000002", "email": "one@shop.test"}))
		res, err := s.ApplyBatch(ctx, itemsOf(again, other))
		if err != nil || res.Applied != 2 {
			t.Fatalf("apply: %+v %v", res, err)
		}
		if got := find(t, s, "email:one@shop.test"); got != c1 {
			t.Fatalf("e-mail now in %s, want %s", got, c1)
		}
		if got := find(t, s, "loyalty:LC-000000002"); got == "" {
			t.Fatal("second card not linked")
		}
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM cust_observations`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("observations %d %v, want 2", n, err)
		}
	})
}

// Ensure that an identifier sealed while its batch was prepared, under a
// sealing key that was retired before the batch was applied (a rotation
// in between), is sealed again under the current key: its raw value
// stays readable once the old key is dropped.
func TestCustomers_SealedAheadThenRotated(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		f := pii.Generate()
		k1, _ := pii.New(f)
		s.SetCustomerKeys(k1)
		a := newDevice("S1", "pos-1", 1)
		prep := s.Prepare(itemsOf(a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"}))))
		f.AddSealKey()
		if err := f.DropSealKey(1); err != nil {
			t.Fatal(err)
		}
		k2, _ := pii.New(f)
		s.SetCustomerKeys(k2)
		if res, err := s.ApplyPrepared(context.Background(), prep); err != nil || res.Applied != 1 {
			t.Fatalf("apply: %+v %v", res, err)
		}
		v := view(t, s, find(t, s, "loyalty:LC-1"))
		if len(v.Identifiers) != 2 {
			t.Fatalf("identifiers: %+v", v.Identifiers)
		}
		if n, err := s.RekeyCustomers(context.Background(), 0); err != nil || n != 0 {
			t.Fatalf("rekey found %d stale values (%v): one was written under the retired key", n, err)
		}
	})
}
