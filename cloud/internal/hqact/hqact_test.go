package hqact

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/testkit"
)

func oversell() store.Conflict {
	return store.Conflict{ID: 7, SKU: "A", Location: "S1", Kind: inventory.KindOversell, Available: -3, Version: 2,
		Reservations: []string{"o1"}, Suggestions: []store.Stock{{SKU: "A", Location: "S2", Available: 5}, {SKU: "A", Location: "S3", Available: 1}}}
}

// Ensure that Plan turns each decision into the one event that carries it
// out, and refuses what makes no sense now.
func TestPlan(t *testing.T) {
	lines := []events.Line{{SKU: "A", Qty: 2}}
	f := Facts{Conflict: oversell(), ReservationAt: "S1", ReservationLines: lines}
	cases := []struct {
		name string
		r    Request
		kind events.Kind
		body string
	}{
		{"transfer the shortfall", Request{ActionID: "x", Action: ActTransfer, From: "S2"}, events.KindTransferOut,
			`{"location":"S2","lines":[{"sku":"A","qty":3}],"reason":"conflict 7","transfer_id":"hq-x","to":"S1"}`},
		{"transfer what there is", Request{ActionID: "x", Action: ActTransfer, From: "S3"}, events.KindTransferOut,
			`{"location":"S3","lines":[{"sku":"A","qty":1}],"reason":"conflict 7","transfer_id":"hq-x","to":"S1"}`},
		{"transfer less", Request{ActionID: "x", Action: ActTransfer, From: "S2", Qty: 1}, events.KindTransferOut,
			`{"location":"S2","lines":[{"sku":"A","qty":1}],"reason":"conflict 7","transfer_id":"hq-x","to":"S1"}`},
		{"transfer too much", Request{ActionID: "x", Action: ActTransfer, From: "S2", Qty: 6}, "", ""},
		{"transfer from nowhere", Request{ActionID: "x", Action: ActTransfer, From: "S9"}, "", ""},
		{"re-source", Request{Action: ActResource, Reservation: "o1", To: "S2"}, events.KindReserve,
			`{"reservation_id":"o1","location":"S2","lines":[{"sku":"A","qty":2}]}`},
		{"re-source in place", Request{Action: ActResource, Reservation: "o1", To: "S1"}, "", ""},
		{"re-source nowhere", Request{Action: ActResource, Reservation: "o1", To: "no where"}, "", ""},
		{"cancel", Request{Action: ActCancel, Reservation: "o1"}, events.KindRelease, `{"reservation_id":"o1","location":"S1"}`},
		{"cancel another order", Request{Action: ActCancel, Reservation: "o2"}, "", ""},
		{"unknown", Request{Action: "shrug"}, "", ""},
	}
	for _, c := range cases {
		ds, err := Plan(f, c.r)
		if c.kind == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v %v, want ErrInvalid", c.name, ds, err)
			}
			continue
		}
		if err != nil || len(ds) != 1 || ds[0].Kind != c.kind || string(ds[0].Body) != c.body {
			t.Errorf("%s: %v %s, want %s %s", c.name, err, ds, c.kind, c.body)
		}
	}
	if ps := Proposals(oversell()); len(ps) != 4 || ps[0].From != "S2" || ps[0].Qty != 3 || ps[1].Qty != 1 || ps[2].To != "S2" || ps[3].Action != ActCancel {
		t.Errorf("proposals %+v", ps)
	}
}

// Ensure that an action acts once: two replicas taking the same decision
// at once, or a double click, write its events once; another decision on
// the same conflict is refused; and a crash between the claim and the
// write is mended by asking again.
func TestService_ActOnce(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, dsn string) {
		ctx := context.Background()
		st, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		seq := uint64(0)
		put := func(origin string, k events.Kind, body any) {
			data, _ := json.Marshal(body)
			seq++
			env := events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), HLC: hlc.Timestamp{Wall: int64(seq)},
				Origin: events.Origin{Store: origin, Device: "d", Epoch: 1, Seq: seq}, Kind: k, Data: data}
			if res, err := st.ApplyBatch(ctx, []store.Item{{Env: env}}); err != nil || res.Applied != 1 {
				t.Fatalf("seed %s: %+v %v", k, res, err)
			}
		}
		put("S2", events.KindCount, events.StockMove{Location: "S2", Lines: []events.Line{{SKU: "A", Qty: 5}}})
		put("online", events.KindReserve, events.ReservationMove{ReservationID: "o1", Location: "S1", Lines: []events.Line{{SKU: "A", Qty: 2}}})
		cs, err := st.Conflicts(ctx, true, 10)
		if err != nil || len(cs) != 1 {
			t.Fatalf("conflicts %v %v", cs, err)
		}
		c := cs[0]
		// Two replicas, the same click.
		r := Request{ConflictID: c.ID, Version: c.Version, ActionID: "click-1", Action: ActTransfer, From: "S2", Actor: "ada"}
		var wg sync.WaitGroup
		results := make([]Result, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = New(Options{Store: st}).Act(ctx, r)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || results[0].Repeated == results[1].Repeated {
			t.Fatalf("two replicas: %+v %v / %+v %v", results[0], errs[0], results[1], errs[1])
		}
		if s := stockOf(t, st, "A", "S2"); s.OnHand != 3 {
			t.Fatalf("S2 after one transfer of 2: %+v", s)
		}
		// Another decision on the closed conflict.
		if _, err := New(Options{Store: st}).Act(ctx, Request{ConflictID: c.ID, Version: c.Version, ActionID: "click-2", Action: ActCancel, Reservation: "o1"}); !errors.Is(err, store.ErrConflictClosed) {
			t.Fatalf("a second decision: %v", err)
		}
		// A claim whose events were never written (the hub died between
		// the two): asking again writes them, once.
		put("S3", events.KindCount, events.StockMove{Location: "S3", Lines: []events.Line{{SKU: "B", Qty: 4}}})
		put("online", events.KindReserve, events.ReservationMove{ReservationID: "o2", Location: "S1", Lines: []events.Line{{SKU: "B", Qty: 1}}})
		cs, _ = st.Conflicts(ctx, true, 10)
		if len(cs) != 1 || cs[0].SKU != "B" {
			t.Fatalf("conflict on B: %+v", cs)
		}
		ds, err := Plan(Facts{Conflict: cs[0], ReservationAt: "S1", ReservationLines: []events.Line{{SKU: "B", Qty: 1}}}, Request{ActionID: "c3", Action: ActCancel, Reservation: "o2"})
		if err != nil {
			t.Fatal(err)
		}
		detail, _ := json.Marshal(ds)
		if _, _, err := st.ClaimConflictAction(ctx, store.ConflictAction{ConflictID: cs[0].ID, ActionID: "c3", Action: ActCancel, Detail: string(detail), Actor: "bo"}, cs[0].Version); err != nil {
			t.Fatal(err)
		}
		res, err := New(Options{Store: st}).Act(ctx, Request{ConflictID: cs[0].ID, Version: cs[0].Version, ActionID: "c3", Action: ActCancel, Reservation: "o2", Actor: "bo"})
		if err != nil || res.Repeated {
			t.Fatalf("mending: %+v %v", res, err)
		}
		if s := stockOf(t, st, "B", "S1"); s.Reserved != 0 {
			t.Fatalf("o2 still held: %+v", s)
		}
		all, _ := st.Conflicts(ctx, false, 10)
		for _, c := range all {
			if c.ResolvedBy != inventory.CauseHQAction {
				t.Errorf("conflict %d resolved by %q", c.ID, c.ResolvedBy)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); run(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db")) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); run(t, testkit.Postgres(t)) })
}

func stockOf(t *testing.T, st *store.Store, sku, loc string) store.Stock {
	t.Helper()
	rows, err := st.StockForSKU(context.Background(), sku)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Location == loc {
			return r
		}
	}
	return store.Stock{}
}
