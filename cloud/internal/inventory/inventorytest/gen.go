// Package inventorytest generates random inventory event logs and the
// disorderly deliveries a hub sees (shuffled, duplicated, delayed), for the
// property tests of the inventory rules and of the store.
//
// Everything is driven by the *rand.Rand it is given, event ids included, so
// a failing seed reproduces exactly.
package inventorytest

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Options shapes a generated log. Zero fields take the defaults in brackets.
type Options struct {
	Devices   int // devices emitting events [3]
	SKUs      int // distinct SKUs [4]
	Locations int // distinct locations, which are also the stores [3]
	Events    int // events in the log [60]
	// Prefix is put in front of every store, device, location, SKU and
	// reservation id, so several logs can share one store without meeting.
	Prefix string
	// BaseWall is the HLC wall of the first event [1_700_000_000_000].
	BaseWall int64
}

func (o *Options) defaults() {
	if o.Devices <= 0 {
		o.Devices = 3
	}
	if o.SKUs <= 0 {
		o.SKUs = 4
	}
	if o.Locations <= 0 {
		o.Locations = 3
	}
	if o.Events <= 0 {
		o.Events = 60
	}
	if o.BaseWall == 0 {
		o.BaseWall = 1_700_000_000_000
	}
}

// onlineStore is the online channel's store and location in the logs.
const onlineStore = "online"

// SKU returns the name of SKU i under o.
func (o Options) SKU(i int) string { return fmt.Sprintf("%sSKU-%d", o.Prefix, i) }

// Location returns the name of location (and store) i under o.
func (o Options) Location(i int) string { return fmt.Sprintf("%sL%d", o.Prefix, i) }

type device struct {
	store, name string
	epoch, seq  uint64
	skew        int64 // ms added to true time
	last        hlc.Timestamp
}

// Log returns a random log of o.Events events from o.Devices devices, in
// generation order. Each device stamps with its own skewed clock, so HLC
// order differs from generation order and late counts, late deltas around a
// count, and releases stamped before their reserve all occur. Devices are
// occasionally re-imaged (a new epoch, seq back to 1). Every event passes
// events.Validate.
func Log(rng *rand.Rand, o Options) []events.Envelope {
	o.defaults()
	devs := make([]*device, o.Devices)
	for i := range devs {
		devs[i] = &device{
			store: o.Location(i % o.Locations),
			name:  fmt.Sprintf("%sdev%d", o.Prefix, i),
			epoch: uint64(1000 + rng.Intn(1000)),
			skew:  int64(rng.Intn(41) - 20),
		}
	}
	// One more device: the online channel (the web shop), whose store is
	// inventory.DefaultOnline; it takes orders for any store and may
	// release any.
	devs = append(devs, &device{
		store: onlineStore,
		name:  fmt.Sprintf("%sweb", o.Prefix),
		epoch: uint64(1000 + rng.Intn(1000)),
		skew:  int64(rng.Intn(41) - 20),
	})
	nres := o.Events/6 + 1
	lastReserve := map[string]events.ReservationMove{}
	out := make([]events.Envelope, 0, o.Events)
	for i := 0; i < o.Events; i++ {
		d := devs[rng.Intn(len(devs))]
		if rng.Intn(100) == 0 {
			d.epoch += uint64(1 + rng.Intn(5))
			d.seq = 0
		}
		d.seq++
		wall := o.BaseWall + int64(i)*3 + d.skew + int64(rng.Intn(3))
		ts := hlc.Timestamp{Wall: wall}
		if ts.Compare(d.last) <= 0 {
			ts = hlc.Timestamp{Wall: d.last.Wall, Logical: d.last.Logical + 1}
		}
		d.last = ts
		env := events.Envelope{
			V:      events.CurrentVersion,
			ID:     uuid(rng),
			Origin: events.Origin{Store: d.store, Device: d.name, Epoch: d.epoch, Seq: d.seq},
			HLC:    ts,
		}
		// A store moves stock at its own location only; an order may be
		// taken for collection anywhere.
		loc := d.store
		anywhere := o.Location(rng.Intn(o.Locations))
		var body any
		switch r := rng.Intn(100); {
		case r < 28:
			env.Kind = events.KindSale
			body = events.StockMove{Location: loc, Lines: lines(rng, o, 1, 5, false)}
		case r < 33:
			env.Kind = events.KindReturn
			body = events.StockMove{Location: loc, Lines: lines(rng, o, 1, 3, false)}
		case r < 45:
			env.Kind = events.KindReceipt
			body = events.StockMove{Location: loc, Lines: lines(rng, o, 1, 8, false)}
		case r < 52:
			env.Kind = events.KindAdjust
			ls := lines(rng, o, 1, 4, false)
			for j := range ls {
				if rng.Intn(2) == 0 {
					ls[j].Qty = -ls[j].Qty
				}
			}
			body = events.StockMove{Location: loc, Lines: ls, Reason: "damaged"}
		case r < 64:
			env.Kind = events.KindCount
			m := events.StockMove{Location: loc, Lines: lines(rng, o, 0, 12, true)}
			if rng.Intn(2) == 0 {
				// A sweep that started up to ten events earlier: the
				// deltas stamped since belong on top of its count.
				m.Method, m.SnapshotAt = events.CountRFIDSweep, time.UnixMilli(ts.Wall-int64(rng.Intn(30)))
			}
			body = m
		case r < 67:
			env.Kind = events.KindTransferOut
			body = events.StockMove{Location: loc, To: o.Location(rng.Intn(o.Locations)), Lines: lines(rng, o, 1, 3, false)}
		case r < 70:
			env.Kind = events.KindTransferIn
			body = events.StockMove{Location: loc, From: o.Location(rng.Intn(o.Locations)), Lines: lines(rng, o, 1, 3, false)}
		case r < 82:
			env.Kind = events.KindReserve
			rid := fmt.Sprintf("%sR%d", o.Prefix, rng.Intn(nres))
			where := loc
			if d.store == onlineStore || rng.Intn(5) == 0 {
				where = anywhere
			}
			m := events.ReservationMove{ReservationID: rid, Location: where, Lines: lines(rng, o, 1, 3, false), Channel: "web"}
			lastReserve[rid] = m
			body = m
		case r < 91:
			env.Kind = events.KindRelease
			rid := fmt.Sprintf("%sR%d", o.Prefix, rng.Intn(nres))
			// Usually the store holding the order, or the web shop; a
			// store releasing another's order changes nothing.
			where := loc
			if r, ok := lastReserve[rid]; ok && rng.Intn(3) > 0 {
				if d.store == onlineStore {
					where = r.Location
				}
			}
			m := events.ReservationMove{ReservationID: rid, Location: where}
			if rng.Intn(2) == 0 {
				m.Lines = lines(rng, o, 1, 2, false)
			}
			body = m
		default:
			env.Kind = events.KindFulfil
			rid := fmt.Sprintf("%sR%d", o.Prefix, rng.Intn(nres))
			m, ok := lastReserve[rid]
			if !ok {
				m = events.ReservationMove{ReservationID: rid, Lines: lines(rng, o, 1, 2, false)}
			}
			// The store handing the order over fulfils it, at its own
			// location: the one holding it, or another one (which changes
			// nothing for the order but its own stock).
			m.Location = d.store
			m.Channel = "bopis"
			body = m
		}
		data, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		env.Data = data
		if err := env.Validate(); err != nil {
			panic(fmt.Sprintf("inventorytest: generated an invalid event: %v", err))
		}
		out = append(out, env)
	}
	return out
}

// lines returns 1 to 3 lines with quantities in [lo, hi]; unique SKUs when
// unique is set (counts).
func lines(rng *rand.Rand, o Options, lo, hi int64, unique bool) []events.Line {
	n := 1 + rng.Intn(3)
	seen := map[int]bool{}
	var out []events.Line
	for len(out) < n {
		s := rng.Intn(o.SKUs)
		if unique && seen[s] {
			if len(seen) == o.SKUs {
				break
			}
			continue
		}
		seen[s] = true
		out = append(out, events.Line{SKU: o.SKU(s), Qty: lo + rng.Int63n(hi-lo+1)})
	}
	return out
}

func uuid(rng *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x",
		rng.Uint32(), rng.Intn(1<<16), rng.Intn(1<<12), 0x8000|rng.Intn(1<<14), rng.Int63n(1<<48))
}

// Deliveries returns log the way a hub may receive it: shuffled, about
// dupFrac of the events delivered a second time, and about a tenth of them
// delayed (moved to the end, after everything else).
func Deliveries(rng *rand.Rand, log []events.Envelope, dupFrac float64) []events.Envelope {
	out := make([]events.Envelope, 0, len(log)*2)
	out = append(out, log...)
	for _, e := range log {
		if rng.Float64() < dupFrac {
			out = append(out, e)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	var late []events.Envelope
	kept := out[:0]
	for _, e := range out {
		if rng.Intn(10) == 0 {
			late = append(late, e)
		} else {
			kept = append(kept, e)
		}
	}
	return append(kept, late...)
}

// Batches splits in into consecutive batches of 1 to max events.
func Batches(rng *rand.Rand, in []events.Envelope, max int) [][]events.Envelope {
	var out [][]events.Envelope
	for len(in) > 0 {
		n := 1 + rng.Intn(max)
		if n > len(in) {
			n = len(in)
		}
		out = append(out, in[:n])
		in = in[n:]
	}
	return out
}
