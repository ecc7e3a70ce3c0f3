package cartsvc

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that reservation modes per channel parse, and that a bad one is
// refused with ErrInvalid.
func TestParseModes(t *testing.T) {
	got, err := ParseModes("web=cart:30m, app=order,kiosk=none")
	if err != nil || got["web"] != (Mode{ReserveOnCart, 30 * time.Minute}) || got["app"].Kind != ReserveOnOrder || got["kiosk"].Kind != ReserveNone {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{"web", "web=cart", "web=cart:-1m", "web=order:5m", "web=always", "=none"} {
		if _, err := ParseModes(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if m, err := ParseModes(""); err != nil || len(m) != 0 {
		t.Fatalf("empty: %v %v", m, err)
	}
}

// databases are the DSNs of a fresh SQLite file and a fresh PostgreSQL
// schema, by name.
func databases(t *testing.T) map[string]string {
	return map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "hub.db"),
		"postgres": testkit.Postgres(t),
	}
}

// service runs a cart service over a real store at dsn; the web channel
// reserves on cart.
func service(t *testing.T, dsn string) (*Service, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, _ := ed25519.GenerateKey(nil)
	modes, _ := ParseModes("web=cart:1m,app=order")
	svc, err := New(Options{Store: st, Online: "online", Key: key, Modes: modes, ExpiryEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc, st
}

// Ensure that requests decided in one group on one read of the books see
// what those before them in the group did: many edits of the same carts
// at once (one customer's two carts, merged) end as
// the books say, every answer shows its own edit, the cart's hold covers
// every line, and of concurrent checkouts of one cart exactly one takes
// an order.
func TestGroupedRequests(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			svc, _ := service(t, dsn)
			a, _, err := svc.Create(ctx, "C1", "web", []LineInput{{SKU: "A0", Qty: 1}})
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := svc.Create(ctx, "", "web", []LineInput{{SKU: "B0", Qty: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Claim(ctx, b, "C1"); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for i := range 120 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id, sku := a, fmt.Sprintf("A%d", i)
					if i%3 == 1 {
						id, sku = b, fmt.Sprintf("B%d", i)
					}
					st, err := svc.SetLine(ctx, id, "web", LineInput{SKU: sku, Qty: int64(i%4 + 1)})
					if err != nil {
						errs <- err
						return
					}
					if !slices.ContainsFunc(st.Lines, func(l carts.ViewLine) bool { return l.SKU == sku && l.Qty == int64(i%4+1) }) {
						errs <- fmt.Errorf("answer of %s lacks its own line: %+v", sku, st.Lines)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			st, err := svc.Get(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Carts) != 2 {
				t.Fatalf("claimed carts not merged: %v", st.Carts)
			}
			// A0..A119, B0.
			if len(st.Lines) != 121 {
				t.Errorf("merged view has %d lines, want 121", len(st.Lines))
			}
			// The primary cart's hold holds the whole view: each edit's
			// reserve was worked out on what the edits before it did.
			var held []string
			for _, h := range st.Holds {
				if h.Active && !h.Released && h.CartID == st.ID {
					for _, l := range h.Lines {
						held = append(held, fmt.Sprintf("%s:%d", l.SKU, l.Qty))
					}
				}
			}
			var lines []string
			for _, l := range st.Lines {
				lines = append(lines, fmt.Sprintf("%s:%d", l.SKU, l.Qty))
			}
			slices.Sort(held)
			slices.Sort(lines)
			if !slices.Equal(held, lines) {
				t.Errorf("hold %v, cart %v", held, lines)
			}
			var orders sync.Map
			var n sync.WaitGroup
			for range 8 {
				n.Add(1)
				go func() {
					defer n.Done()
					o, err := svc.Checkout(ctx, a, 0, "app")
					if err == nil {
						orders.Store(o.OrderID, o)
					} else if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
				}()
			}
			n.Wait()
			count := 0
			orders.Range(func(_, v any) bool {
				count++
				if o := v.(Order); !o.State.Closed || o.ReservationID == "" {
					t.Errorf("order %+v", o)
				}
				return true
			})
			if count != 1 {
				t.Fatalf("%d orders of one cart", count)
			}
		})
	}
}

// Ensure that claiming an anonymous cart that holds stock moves its hold
// into the customer's view: the anonymous cart's hold is released and the
// view's primary cart holds the merged lines once (the union policy: the
// larger quantity of a line in both), until the later of the two expiries.
func TestClaim_MovesAnonymousHold(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			svc, _ := service(t, dsn)
			mine, _, err := svc.Create(ctx, "C1", "web", []LineInput{{SKU: "A", Qty: 1}, {SKU: "B", Qty: 3}})
			if err != nil {
				t.Fatal(err)
			}
			anon, _, err := svc.Create(ctx, "", "web", []LineInput{{SKU: "B", Qty: 2}, {SKU: "C", Qty: 5}})
			if err != nil {
				t.Fatal(err)
			}
			before, err := svc.Get(ctx, anon)
			if err != nil || len(before.Holds) != 1 || !before.Holds[0].Active {
				t.Fatalf("anonymous cart's hold: %+v %v", before.Holds, err)
			}
			anonHold := before.Holds[0].ReservationID
			st, err := svc.Claim(ctx, anon, "C1")
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != mine {
				t.Fatalf("primary %s, want the customer's own cart %s", st.ID, mine)
			}
			var live []store.CartHold
			for _, h := range st.Holds {
				if h.ReservationID == anonHold && (h.Active || !h.Released) {
					t.Errorf("anonymous hold still live: %+v", h)
				}
				if h.Active && !h.Released {
					live = append(live, h)
				}
			}
			if len(live) != 1 || live[0].CartID != mine {
				t.Fatalf("live holds %+v, want the primary's alone", live)
			}
			var held []string
			for _, l := range live[0].Lines {
				held = append(held, fmt.Sprintf("%s:%d", l.SKU, l.Qty))
			}
			if want := []string{"A:1", "B:3", "C:5"}; !slices.Equal(held, want) {
				t.Errorf("held %v, want %v", held, want)
			}
			if live[0].ExpiresAt.Before(before.Holds[0].ExpiresAt) {
				t.Errorf("hold expires %v, before the anonymous hold's %v", live[0].ExpiresAt, before.Holds[0].ExpiresAt)
			}
			// The books agree with the answer.
			again, err := svc.Get(ctx, anon)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, h := range again.Holds {
				if h.Active && !h.Released {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("books hold %d live holds: %+v", n, again.Holds)
			}
		})
	}
}
