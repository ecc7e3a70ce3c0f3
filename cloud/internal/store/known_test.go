package store

import (
	"context"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that a batch whose rows were taken as known but are gone (deleted
// behind the hub's back) is redone with every insert-if-missing, and
// applies as it would have.
func TestKnownRows_MissingRowRedone(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	ctx := context.Background()
	web := newDevice("online", "hub-1", 1)
	cart := testCartID(7)
	hold := CartHoldPrefix + cart + "-1"
	p := int64(500)
	edit := func(w int64, qty int64) []events.Envelope {
		return []events.Envelope{
			web.ev(w, events.KindLineSet, events.LineSet{CartID: cart, Channel: "web",
				Lines: []events.CartLine{{SKU: "SKU-1", Qty: qty, UnitPrice: &p}}}),
			web.ev(w+1, events.KindReserve, map[string]any{"reservation_id": hold, "location": "online",
				"lines": []events.Line{line("SKU-1", qty)}, "channel": "web", "cart_id": cart, "expires_ms": w + 60_000}),
		}
	}
	apply(t, s, edit(1000, 1)...)
	if !s.known.all([]string{knownKey("carts", cart), knownKey("reservations", hold)}) {
		t.Fatal("the batch's cart and reservation are not known after it committed")
	}
	for _, del := range []struct{ q, key string }{
		{`DELETE FROM carts WHERE cart_id = $1`, cart},
		{`DELETE FROM reservation_lines WHERE reservation_id = $1`, hold},
		{`DELETE FROM reservations WHERE reservation_id = $1`, hold},
	} {
		if _, err := s.w.ExecContext(ctx, del.q, del.key); err != nil {
			t.Fatal(err)
		}
	}
	res := apply(t, s, edit(2000, 3)...)
	if res.Applied != 2 {
		t.Fatalf("applied %d of 2", res.Applied)
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM carts WHERE cart_id = $1`, cart).Scan(&n); err != nil || n != 1 {
		t.Fatalf("cart rows %d, err %v", n, err)
	}
	hs, err := s.CartHolds(ctx, []string{cart})
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || !hs[0].Active || !slices.Equal(hs[0].Lines, []events.Line{line("SKU-1", 3)}) {
		t.Fatalf("holds after the redone batch: %+v", hs)
	}
}

func TestDiffLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		from, to       []events.Line
		wantGone, want []string
	}{
		{"same", []events.Line{line("A", 1), line("B", 2)}, []events.Line{line("A", 1), line("B", 2)}, nil, nil},
		{"qty changed", []events.Line{line("A", 1), line("B", 2)}, []events.Line{line("A", 1), line("B", 3)}, nil, []string{"B3"}},
		{"added", []events.Line{line("B", 2)}, []events.Line{line("A", 1), line("B", 2), line("C", 5)}, nil, []string{"A1", "C5"}},
		{"gone", []events.Line{line("A", 1), line("B", 2), line("C", 3)}, []events.Line{line("B", 2)}, []string{"A", "C"}, nil},
		{"all new", nil, []events.Line{line("A", 1)}, nil, []string{"A1"}},
		{"all gone", []events.Line{line("A", 1)}, nil, []string{"A"}, nil},
		{"mixed", []events.Line{line("A", 1), line("C", 3)}, []events.Line{line("B", 2), line("C", 4)}, []string{"A"}, []string{"B2", "C4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gone, set []string
			diffLines(tc.from, tc.to, func(l events.Line) { gone = append(gone, l.SKU) },
				func(l events.Line) { set = append(set, l.SKU+string(rune('0'+l.Qty))) })
			if !slices.Equal(gone, tc.wantGone) || !slices.Equal(set, tc.want) {
				t.Fatalf("gone %v set %v, want %v %v", gone, set, tc.wantGone, tc.want)
			}
		})
	}
}
