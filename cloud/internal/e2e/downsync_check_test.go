package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// downsyncCheck compares what stores are told with the oracle's books of
// envs: every stock document in the down-sync bucket and every pickup
// order in the pickup bucket. It returns how many of each it compared and
// the differences (sorted, at most a few dozen spelled out).
func downsyncCheck(ctx context.Context, js jetstream.JetStream, envs []events.Envelope) (stock, orders int, diffs []string, err error) {
	book, err := loadgen.Replay(envs)
	if err != nil {
		return 0, 0, nil, err
	}
	want := loadgen.BooksOf(book)
	raw, err := readBucket(ctx, js, downsync.Stream, downsync.SubjectPrefix+"stk.>")
	if err != nil {
		return 0, 0, nil, fmt.Errorf("down-sync bucket: %w", err)
	}
	got := map[inventory.Key]downsync.StockDoc{}
	for subj, b := range raw {
		var d downsync.StockDoc
		if err := json.Unmarshal(b, &d); err != nil {
			return 0, 0, nil, fmt.Errorf("%s: %w", subj, err)
		}
		got[inventory.Key{SKU: d.SKU, Location: d.Location}] = d
	}
	for k, w := range want {
		d, ok := got[k]
		switch {
		case !ok && (w.OnHand != 0 || w.Reserved != 0):
			diffs = append(diffs, fmt.Sprintf("stock %s at %s: want %+v, not published", k.SKU, k.Location, w))
		case ok && (d.OnHand != w.OnHand || d.Reserved != w.Reserved):
			diffs = append(diffs, fmt.Sprintf("stock %s at %s: want %+v, published on_hand %d reserved %d", k.SKU, k.Location, w, d.OnHand, d.Reserved))
		}
	}
	for k, d := range got {
		if _, ok := want[k]; !ok && (d.OnHand != 0 || d.Reserved != 0) {
			diffs = append(diffs, fmt.Sprintf("stock %s at %s: published %+v, not in the books", k.SKU, k.Location, d))
		}
	}

	pickups, err := readPickups(ctx, js, downsync.PickupSubjectPrefix+">")
	if err != nil {
		return 0, 0, nil, fmt.Errorf("pickup bucket: %w", err)
	}
	resv := book.Reservations()
	for id, r := range resv {
		if !r.Reserved {
			continue
		}
		state := downsync.PickupOpen
		switch {
		case r.Closed && r.ClosedBy == events.KindFulfil:
			state = downsync.PickupCollected
		case r.Closed:
			state = downsync.PickupCancelled
		}
		var lines []downsync.PickupLine
		for _, l := range r.Lines {
			lines = append(lines, downsync.PickupLine{SKU: l.SKU, Qty: l.Qty})
		}
		d, ok := pickups[id]
		if !ok || d.Store != r.Location || d.State != state || !slices.Equal(d.Lines, lines) {
			diffs = append(diffs, fmt.Sprintf("pickup %s: want %s at %s %v, published %+v (%v)", id, state, r.Location, lines, d, ok))
		}
	}
	for id, d := range pickups {
		if r, ok := resv[id]; !ok || !r.Reserved {
			diffs = append(diffs, fmt.Sprintf("pickup %s: published %+v, never reserved", id, d))
		}
	}
	sort.Strings(diffs)
	return len(want), len(pickups), diffs, nil
}
