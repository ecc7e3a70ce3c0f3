package inventory_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/inventory/inventorytest"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// ev builds a valid envelope of kind k stamped at wall ms w with body,
// from store S1.
func ev(id string, w int64, k events.Kind, body any) events.Envelope {
	return evFrom("S1", id, w, k, body)
}

// evFrom is ev from a given store.
func evFrom(store, id string, w int64, k events.Kind, body any) events.Envelope {
	data, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return events.Envelope{
		V:      events.CurrentVersion,
		ID:     fmt.Sprintf("00000000-0000-7000-8000-%012s", id),
		Origin: events.Origin{Store: store, Device: "pos-1", Epoch: 1, Seq: uint64(w)},
		HLC:    hlc.Timestamp{Wall: w},
		Kind:   k,
		Data:   data,
	}
}

// stock is a stock move at loc, from the store at loc.
func stock(id string, w int64, k events.Kind, loc string, lines ...events.Line) events.Envelope {
	return evFrom(loc, id, w, k, events.StockMove{Location: loc, Lines: lines})
}

// resv is a reservation event naming loc, from the store at loc.
func resv(id string, w int64, k events.Kind, rid, loc string, lines ...events.Line) events.Envelope {
	return evFrom(loc, id, w, k, events.ReservationMove{ReservationID: rid, Location: loc, Lines: lines})
}

// rules are the rules the tests apply.
var rules = inventory.Rules{Online: inventory.DefaultOnline}

func line(sku string, qty int64) events.Line { return events.Line{SKU: sku, Qty: qty} }

// engine applies events incrementally, batch by batch, the way the store
// does: Position.NewCount/Apply with a ledger, Reservation.Apply and
// HoldChange. It deduplicates by event id.
type engine struct {
	seen   map[string]bool
	ledger map[inventory.Key][]inventory.Move
	pos    map[inventory.Key]inventory.Position
	res    map[string]inventory.Reservation
}

func newEngine() *engine {
	return &engine{
		seen:   map[string]bool{},
		ledger: map[inventory.Key][]inventory.Move{},
		pos:    map[inventory.Key]inventory.Position{},
		res:    map[string]inventory.Reservation{},
	}
}

func (e *engine) apply(t testing.TB, batch []events.Envelope) {
	t.Helper()
	moves := map[inventory.Key][]inventory.Move{}
	held := map[inventory.Key]int64{}
	for _, env := range batch {
		if e.seen[env.ID] {
			continue
		}
		e.seen[env.ID] = true
		eff, err := rules.Effect(env)
		if err != nil {
			t.Fatalf("Effect(%s): %v", env.Kind, err)
		}
		for _, m := range eff.Moves {
			moves[m.Key] = append(moves[m.Key], m)
			e.ledger[m.Key] = append(e.ledger[m.Key], m)
		}
		if op := eff.Reservation; op != nil {
			before := e.res[op.ID]
			after := before.Apply(*op)
			for k, d := range inventory.HoldChange(before, after) {
				held[k] += d
				if _, ok := moves[k]; !ok {
					moves[k] = nil
				}
			}
			e.res[op.ID] = after
		}
	}
	for k, ms := range moves {
		p := e.pos[k]
		var after int64
		if c, ok := p.NewCount(ms); ok {
			for _, m := range e.ledger[k] {
				if m.Stamp.Compare(c.Stamp) > 0 {
					after += m.Delta
				}
			}
		}
		p = p.Apply(ms, after)
		p.Reserved += held[k]
		e.pos[k] = p
	}
}

func samePositions(t testing.TB, got, want map[inventory.Key]inventory.Position) {
	t.Helper()
	keys := map[inventory.Key]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	for k := range keys {
		g, w := got[k], want[k]
		if g.OnHand != w.OnHand || g.Reserved != w.Reserved || g.Safety != w.Safety || g.HasCount != w.HasCount || g.CountQty != w.CountQty || g.CountStamp != w.CountStamp {
			t.Fatalf("%v: got on_hand=%d reserved=%d safety=%d count=%v/%d@%v, want on_hand=%d reserved=%d safety=%d count=%v/%d@%v",
				k, g.OnHand, g.Reserved, g.Safety, g.HasCount, g.CountQty, g.CountStamp,
				w.OnHand, w.Reserved, w.Safety, w.HasCount, w.CountQty, w.CountStamp)
		}
	}
}

// Ensure that the stock rules give the expected on_hand whatever the
// arrival order, checked against the oracle and the incremental engine fed
// in the listed order, one event per batch and all in one batch.
func TestStockRules(t *testing.T) {
	k := inventory.Key{SKU: "A", Location: "S1"}
	tests := []struct {
		name   string
		events []events.Envelope // arrival order
		onHand int64
	}{
		{"deltas only", []events.Envelope{
			stock("1", 10, events.KindReceipt, "S1", line("A", 10)),
			stock("2", 11, events.KindSale, "S1", line("A", 3)),
			stock("3", 12, events.KindReturn, "S1", line("A", 1)),
			stock("4", 13, events.KindAdjust, "S1", line("A", -2)),
			stock("5", 14, events.KindTransferOut, "S1", line("A", 1)),
			stock("6", 15, events.KindTransferIn, "S1", line("A", 4)),
		}, 10 - 3 + 1 - 2 - 1 + 4},
		{"oversell without count goes negative", []events.Envelope{
			stock("1", 10, events.KindSale, "S1", line("A", 3)),
		}, -3},
		{"count then deltas", []events.Envelope{
			stock("1", 10, events.KindCount, "S1", line("A", 20)),
			stock("2", 11, events.KindSale, "S1", line("A", 2)),
			stock("3", 12, events.KindReceipt, "S1", line("A", 5)),
		}, 23},
		{"late older count ignored", []events.Envelope{
			stock("1", 20, events.KindCount, "S1", line("A", 20)),
			stock("2", 21, events.KindSale, "S1", line("A", 2)),
			stock("3", 10, events.KindCount, "S1", line("A", 99)),
		}, 18},
		{"late delta before the count ignored", []events.Envelope{
			stock("1", 20, events.KindCount, "S1", line("A", 20)),
			stock("2", 15, events.KindSale, "S1", line("A", 2)),
		}, 20},
		{"late delta after the count applied", []events.Envelope{
			stock("1", 20, events.KindCount, "S1", line("A", 20)),
			stock("3", 30, events.KindReceipt, "S1", line("A", 4)),
			stock("2", 25, events.KindSale, "S1", line("A", 2)),
		}, 22},
		{"newer count supersedes and keeps later deltas", []events.Envelope{
			stock("1", 10, events.KindCount, "S1", line("A", 20)),
			stock("2", 12, events.KindSale, "S1", line("A", 2)),
			stock("3", 30, events.KindSale, "S1", line("A", 1)),
			stock("4", 20, events.KindCount, "S1", line("A", 7)),
		}, 6},
		{"newer count arriving before its earlier deltas", []events.Envelope{
			stock("4", 20, events.KindCount, "S1", line("A", 7)),
			stock("3", 30, events.KindSale, "S1", line("A", 1)),
			stock("2", 12, events.KindSale, "S1", line("A", 2)),
			stock("1", 10, events.KindCount, "S1", line("A", 20)),
		}, 6},
		{"same HLC ordered by id", []events.Envelope{
			stock("2", 10, events.KindCount, "S1", line("A", 5)),
			stock("1", 10, events.KindSale, "S1", line("A", 1)), // id 1 < 2: before the count
			stock("3", 10, events.KindSale, "S1", line("A", 1)), // id 3 > 2: after it
		}, 4},
		{"fulfil takes its lines off on_hand", []events.Envelope{
			stock("1", 10, events.KindCount, "S1", line("A", 10)),
			resv("2", 11, events.KindFulfil, "r1", "S1", line("A", 3)),
		}, 7},
		{"fulfil before a newer count is in the count", []events.Envelope{
			resv("2", 11, events.KindFulfil, "r1", "S1", line("A", 3)),
			stock("1", 12, events.KindCount, "S1", line("A", 10)),
		}, 10},
		{"duplicates applied once", []events.Envelope{
			stock("1", 10, events.KindReceipt, "S1", line("A", 10)),
			stock("1", 10, events.KindReceipt, "S1", line("A", 10)),
			stock("2", 11, events.KindSale, "S1", line("A", 1)),
			stock("2", 11, events.KindSale, "S1", line("A", 1)),
		}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			book := inventory.NewBook()
			one, all := newEngine(), newEngine()
			for _, e := range tt.events {
				if err := book.Add(e); err != nil {
					t.Fatal(err)
				}
				one.apply(t, []events.Envelope{e})
			}
			all.apply(t, tt.events)
			want := book.Positions()
			if got := want[k].OnHand; got != tt.onHand {
				t.Fatalf("oracle on_hand = %d, want %d", got, tt.onHand)
			}
			samePositions(t, one.pos, want)
			samePositions(t, all.pos, want)
		})
	}
}

// Ensure that a reservation is active iff its reserve and no release or
// fulfil was seen, in every arrival order of its events.
func TestReservationsEveryOrder(t *testing.T) {
	reserve := resv("1", 10, events.KindReserve, "r1", "S1", line("A", 2), line("B", 1), line("A", 1))
	release := resv("2", 20, events.KindRelease, "r1", "S1") // no lines: still the whole reservation
	fulfil := resv("3", 30, events.KindFulfil, "r1", "S1", line("A", 3), line("B", 1))
	amend := resv("4", 15, events.KindReserve, "r1", "S1", line("A", 5))
	earlyRelease := resv("5", 5, events.KindRelease, "r1", "S1") // stamped before the reserve
	a, b := inventory.Key{SKU: "A", Location: "S1"}, inventory.Key{SKU: "B", Location: "S1"}
	tests := []struct {
		name             string
		set              []events.Envelope
		active           bool
		reservedA, resB  int64
		onHandA, onHandB int64
	}{
		{"reserve only", []events.Envelope{reserve}, true, 3, 1, 0, 0},
		{"reserve, release", []events.Envelope{reserve, release}, false, 0, 0, 0, 0},
		{"reserve, fulfil", []events.Envelope{reserve, fulfil}, false, 0, 0, -3, -1},
		{"reserve, release, fulfil", []events.Envelope{reserve, release, fulfil}, false, 0, 0, -3, -1},
		{"release stamped before reserve", []events.Envelope{reserve, earlyRelease}, false, 0, 0, 0, 0},
		{"newest reserve defines the lines", []events.Envelope{reserve, amend}, true, 5, 0, 0, 0},
		{"amend then release", []events.Envelope{reserve, amend, release}, false, 0, 0, 0, 0},
		{"release alone", []events.Envelope{release}, false, 0, 0, 0, 0},
		{"fulfil alone", []events.Envelope{fulfil}, false, 0, 0, -3, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range permutations(len(tt.set)) {
				book := inventory.NewBook()
				eng := newEngine()
				var arrived []string
				var r inventory.Reservation
				for _, i := range order {
					e := tt.set[i]
					arrived = append(arrived, string(e.Kind))
					if err := book.Add(e); err != nil {
						t.Fatal(err)
					}
					eng.apply(t, []events.Envelope{e})
					eff, _ := rules.Effect(e)
					r = r.Apply(*eff.Reservation)
				}
				if r.Active() != tt.active {
					t.Fatalf("order %v: active = %v, want %v", arrived, r.Active(), tt.active)
				}
				if br := book.Reservations()["r1"]; br.Active() != tt.active {
					t.Fatalf("order %v: oracle active = %v", arrived, br.Active())
				}
				pos := book.Positions()
				if pos[a].Reserved != tt.reservedA || pos[b].Reserved != tt.resB || pos[a].OnHand != tt.onHandA || pos[b].OnHand != tt.onHandB {
					t.Fatalf("order %v: A=%+v B=%+v", arrived, pos[a], pos[b])
				}
				samePositions(t, eng.pos, pos)
			}
		})
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// Ensure that safety stock comes off available and that an oversell opens
// when available < 0, names the reservations at risk and suggests the
// other locations with the most stock, and resolves when stock returns.
func TestSafetyStockAndOversell(t *testing.T) {
	book := inventory.NewBook()
	add := func(e events.Envelope) {
		t.Helper()
		if err := book.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	s1 := inventory.Key{SKU: "A", Location: "S1"}
	add(stock("1", 10, events.KindCount, "S1", line("A", 5)))
	add(stock("2", 10, events.KindCount, "S2", line("A", 8)))
	add(stock("3", 10, events.KindCount, "S3", line("A", 2)))
	add(stock("4", 10, events.KindCount, "S4", line("A", 8)))
	add(stock("5", 10, events.KindCount, "S5", line("A", 9)))
	add(stock("6", 10, events.KindCount, "S6", line("A", 0)))
	add(resv("7", 11, events.KindReserve, "r1", "S1", line("A", 2)))
	add(resv("8", 11, events.KindReserve, "r2", "S1", line("A", 1)))
	add(resv("9", 11, events.KindReserve, "r3", "S2", line("A", 1)))

	if p := book.Positions()[s1]; p.Available() != 2 || p.Oversold() {
		t.Fatalf("S1 = %+v, available %d", p, p.Available())
	}
	book.SetSafety(s1, 2)
	if p := book.Positions()[s1]; p.Available() != 0 || p.Oversold() {
		t.Fatalf("with safety stock: available %d", p.Available())
	}
	add(stock("10", 12, events.KindSale, "S1", line("A", 1))) // an offline sale merges in
	if got := book.Oversold(); !slices.Equal(got, []inventory.Key{s1}) {
		t.Fatalf("oversold = %v", got)
	}
	if got := book.AtRisk(s1); !slices.Equal(got, []string{"r1", "r2"}) {
		t.Fatalf("at risk = %v", got)
	}
	want := []inventory.Candidate{{Location: "S5", Available: 9}, {Location: "S4", Available: 8}, {Location: "S2", Available: 7}}
	if got := book.Suggestions(s1); !slices.Equal(got, want) {
		t.Fatalf("suggestions = %v, want %v", got, want)
	}
	add(resv("11", 13, events.KindRelease, "r2", "S1"))
	if got := book.Oversold(); len(got) != 0 {
		t.Fatalf("still oversold after the release: %v", got)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name  string
		cands []inventory.Candidate
		want  []inventory.Candidate
	}{
		{"none", nil, nil},
		{"excludes itself and empty ones", []inventory.Candidate{{"S1", 9}, {"S2", 0}, {"S3", -1}, {"S4", 1}}, []inventory.Candidate{{"S4", 1}}},
		{"ties by location, at most three", []inventory.Candidate{{"S6", 5}, {"S5", 5}, {"S4", 6}, {"S3", 1}, {"S2", 5}},
			[]inventory.Candidate{{"S4", 6}, {"S2", 5}, {"S5", 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inventory.Suggest("S1", tt.cands); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEffectOfRejectsBadBodies(t *testing.T) {
	tests := []struct {
		name string
		env  events.Envelope
	}{
		{"no lines", stock("1", 1, events.KindSale, "S1")},
		{"negative sale", stock("1", 1, events.KindSale, "S1", line("A", -1))},
		{"zero adjust", stock("1", 1, events.KindAdjust, "S1", line("A", 0))},
		{"sku counted twice", stock("1", 1, events.KindCount, "S1", line("A", 1), line("A", 2))},
		{"bad location", stock("1", 1, events.KindSale, "S 1", line("A", 1))},
		{"reserve without id", resv("1", 1, events.KindReserve, "", "S1", line("A", 1))},
		{"malformed", events.Envelope{Kind: events.KindSale, Data: json.RawMessage(`{"lines":"x"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := inventory.EffectOf(tt.env); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	eff, err := inventory.EffectOf(resv("1", 1, events.KindRelease, "r1", "S1"))
	if err != nil || eff.Reservation == nil || len(eff.Moves) != 0 {
		t.Fatalf("release without lines: %+v, %v", eff, err)
	}
	eff, err = inventory.EffectOf(ev("2", 1, events.KindScan, events.Scan{Code: "x"}))
	if err != nil || eff.Reservation != nil || len(eff.Moves) != 0 {
		t.Fatalf("scan: %+v, %v", eff, err)
	}
}

// Ensure that the incremental rules reach the oracle's books for random
// logs delivered shuffled, duplicated, delayed and in random batches.
func TestPropertyIncrementalMatchesOracle(t *testing.T) {
	iters := 1000
	if testing.Short() {
		iters = 200
	}
	for it := 0; it < iters; it++ {
		seed := int64(it)
		rng := rand.New(rand.NewSource(seed))
		opts := inventorytest.Options{Devices: 1 + rng.Intn(4), SKUs: 1 + rng.Intn(5), Locations: 1 + rng.Intn(4), Events: 10 + rng.Intn(120)}
		log := inventorytest.Log(rng, opts)
		book := inventory.NewBook()
		for _, e := range log {
			if err := book.Add(e); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
		eng := newEngine()
		for _, b := range inventorytest.Batches(rng, inventorytest.Deliveries(rng, log, 0.3), 20) {
			eng.apply(t, b)
		}
		want := book.Positions()
		samePositions(t, eng.pos, want)
		for id, r := range book.Reservations() {
			if got := eng.res[id]; got.Active() != r.Active() || !slices.Equal(got.Lines, r.Lines) || got.Location != r.Location {
				t.Fatalf("seed %d: reservation %s = %+v, want %+v", seed, id, got, r)
			}
		}
	}
}

// Ensure that a store moves stock and releases orders only at its own
// location, and that a release or fulfil closes a reservation only when it
// names the reservation's location or comes from the online channel,
// whatever the order the events arrive in.
func TestOrigins(t *testing.T) {
	foreign := []events.Envelope{
		evFrom("S2", "1", 10, events.KindSale, events.StockMove{Location: "S1", Lines: []events.Line{line("A", 1)}}),
		evFrom("S2", "2", 10, events.KindCount, events.StockMove{Location: "S1", Lines: []events.Line{line("A", 0)}}),
		evFrom("S2", "3", 10, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "S1"}),
		evFrom("S2", "4", 10, events.KindFulfil, events.ReservationMove{ReservationID: "r1", Location: "S1", Lines: []events.Line{line("A", 1)}}),
	}
	for _, e := range foreign {
		if _, err := rules.Effect(e); !errors.Is(err, inventory.ErrForeignLocation) {
			t.Fatalf("%s from S2 at S1: %v", e.Kind, err)
		}
	}
	allowed := []events.Envelope{
		evFrom("S2", "5", 10, events.KindReserve, events.ReservationMove{ReservationID: "r1", Location: "S1", Lines: []events.Line{line("A", 1)}}),
		evFrom("S2", "6", 10, events.KindTransferOut, events.StockMove{Location: "S2", To: "S1", Lines: []events.Line{line("A", 1)}}),
		evFrom("online", "7", 10, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "S1"}),
	}
	for _, e := range allowed {
		if _, err := rules.Effect(e); err != nil {
			t.Fatalf("%s from %s: %v", e.Kind, e.Origin.Store, err)
		}
	}

	reserve := evFrom("online", "10", 10, events.KindReserve, events.ReservationMove{ReservationID: "r1", Location: "S1", Lines: []events.Line{line("A", 2)}})
	tests := []struct {
		name   string
		closes []events.Envelope
		active bool
	}{
		{"another store's release", []events.Envelope{
			evFrom("S2", "11", 20, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "S2"})}, true},
		{"another store's fulfil", []events.Envelope{
			evFrom("S2", "12", 20, events.KindFulfil, events.ReservationMove{ReservationID: "r1", Location: "S2", Lines: []events.Line{line("A", 2)}})}, true},
		{"the holding store's release", []events.Envelope{
			evFrom("S1", "13", 20, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "S1"})}, false},
		{"the web shop's release", []events.Envelope{
			evFrom("online", "14", 5, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "online"})}, false},
		{"a foreign close, then the holder's", []events.Envelope{
			evFrom("S2", "15", 12, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "S2"}),
			evFrom("S1", "16", 30, events.KindFulfil, events.ReservationMove{ReservationID: "r1", Location: "S1", Lines: []events.Line{line("A", 2)}})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := append([]events.Envelope{reserve}, tt.closes...)
			for _, order := range permutations(len(set)) {
				book := inventory.NewBook()
				var r inventory.Reservation
				for _, i := range order {
					if err := book.Add(set[i]); err != nil {
						t.Fatal(err)
					}
					eff, _ := rules.Effect(set[i])
					r = r.Apply(*eff.Reservation)
				}
				if r.Active() != tt.active || book.Reservations()["r1"].Active() != tt.active {
					t.Fatalf("order %v: active %v, oracle %v, want %v", order, r.Active(), book.Reservations()["r1"].Active(), tt.active)
				}
			}
		})
	}
}

// Ensure that the online channel's fulfil of a store's order takes the
// goods off that store's shelf and closes the order, that one naming
// another location closes nothing (and takes stock off the shelf it
// names), whatever the order, while its release closes any order; that
// the web channel sells only at its own location; and that no store
// speaks at the online location.
func TestWebChannelCloses(t *testing.T) {
	a2 := []events.Line{line("A", 2)}
	reserve := evFrom("S2", "1", 10, events.KindReserve, events.ReservationMove{ReservationID: "r1", Location: "S2", Lines: a2})
	s2, online := inventory.Key{SKU: "A", Location: "S2"}, inventory.Key{SKU: "A", Location: "online"}
	tests := []struct {
		name          string
		close         events.Envelope
		active        bool
		s2OnHand, web int64
	}{
		{"fulfil where it is held", evFrom("online", "2", 20, events.KindFulfil, events.ReservationMove{ReservationID: "r1", Location: "S2", Lines: a2}), false, -2, 0},
		{"fulfil elsewhere", evFrom("online", "3", 20, events.KindFulfil, events.ReservationMove{ReservationID: "r1", Location: "online", Lines: a2}), true, 0, -2},
		{"release", evFrom("online", "4", 20, events.KindRelease, events.ReservationMove{ReservationID: "r1", Location: "online"}), false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := []events.Envelope{reserve, tt.close}
			for _, order := range permutations(len(set)) {
				book := inventory.NewBook()
				eng := newEngine()
				for _, i := range order {
					if err := book.Add(set[i]); err != nil {
						t.Fatal(err)
					}
					eng.apply(t, []events.Envelope{set[i]})
				}
				pos := book.Positions()
				if book.Reservations()["r1"].Active() != tt.active || pos[s2].OnHand != tt.s2OnHand || pos[online].OnHand != tt.web {
					t.Fatalf("order %v: active %v, S2 %+v, online %+v", order, book.Reservations()["r1"].Active(), pos[s2], pos[online])
				}
				samePositions(t, eng.pos, pos)
			}
		})
	}
	if _, err := rules.Effect(evFrom("online", "5", 20, events.KindSale, events.StockMove{Location: "S2", Lines: a2})); !errors.Is(err, inventory.ErrForeignLocation) {
		t.Fatalf("the web channel selling at S2: %v", err)
	}
	for _, k := range []events.Kind{events.KindSale, events.KindCount, events.KindReceipt} {
		if _, err := rules.Effect(evFrom("S1", "6", 20, k, events.StockMove{Location: "online", Lines: a2})); !errors.Is(err, inventory.ErrForeignLocation) {
			t.Fatalf("S1's %s at online: %v", k, err)
		}
	}
}

// Ensure that the closes a reservation keeps without counting are exactly
// those of another location (the online channel's releases count
// anywhere), in whatever order the events came, and none before the
// reserve.
func TestReservation_Uncounted(t *testing.T) {
	st := func(wall int64, id string) events.Stamp { return events.Stamp{HLC: hlc.Timestamp{Wall: wall}, ID: id} }
	ops := []inventory.ReservationOp{
		{ID: "R", Kind: events.KindReserve, Stamp: st(1, "a"), Location: "S2"},
		{ID: "R", Kind: events.KindFulfil, Stamp: st(2, "b"), Location: "S1"},
		{ID: "R", Kind: events.KindRelease, Stamp: st(3, "c"), Location: "online", Online: true},
		{ID: "R", Kind: events.KindRelease, Stamp: st(4, "d"), Location: "S3"},
	}
	if got := (inventory.Reservation{}).Apply(ops[1]).Uncounted(); got != nil {
		t.Fatalf("before the reserve: %+v", got)
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}} {
		var r inventory.Reservation
		for _, i := range order {
			r = r.Apply(ops[i])
		}
		u := r.Uncounted()
		if len(u) != 2 || u[0].Location != "S1" || u[1].Location != "S3" {
			t.Fatalf("order %v: uncounted %+v", order, u)
		}
		if !r.Closed || r.ClosedBy != events.KindRelease {
			t.Fatalf("order %v: %+v", order, r)
		}
	}
}
