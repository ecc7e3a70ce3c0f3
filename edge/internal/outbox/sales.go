package outbox

import (
	"bytes"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
)

// pendingSale is a sale still in the outbox: the money a store would lose
// track of if the device died now. The outbox keeps them in seq order in
// memory (Outbox.sales), so Stats can report the count, value and age of
// unsynced sales without reading the file: appends push, acks pop, and
// Open rebuilds the queue from the pending events.
type pendingSale struct {
	seq   uint64
	value int64 // Σ qty × unit_price over the lines that carry a price
	wall  int64 // HLC wall ms
}

// saleValue returns the value of a sale's body in minor units (lines
// without a unit price count 0) and whether kind is a sale at all.
//
// It runs on every append, in the caller's goroutine: a sale without
// prices is not decoded at all, and one with prices only for the two
// numbers of each line.
func saleValue(kind events.Kind, data json.RawMessage) (int64, bool) {
	if kind != events.KindSale {
		return 0, false
	}
	if !bytes.Contains(data, unitPriceKey) {
		return 0, true
	}
	var b struct {
		Lines []struct {
			Qty       int64 `json:"qty"`
			UnitPrice int64 `json:"unit_price"`
		} `json:"lines"`
	}
	if json.Unmarshal(data, &b) != nil {
		return 0, true
	}
	var v int64
	for _, l := range b.Lines {
		v += l.Qty * l.UnitPrice
	}
	return v, true
}

var unitPriceKey = []byte(`"unit_price"`)

// loadSales rebuilds the queue of pending sales from the events bucket:
// at Open, a read of every pending event (the same walk bbolt has just
// made to rebuild its freelist). Records are read by storedSale, which
// decodes nothing; only one it does not recognise is decoded whole.
func (o *Outbox) loadSales() error {
	// Sized for the whole backlog at once: grown by append, a million
	// pending sales would be copied over and over while the agent starts.
	o.mu.Lock()
	sales := make([]pendingSale, 0, o.st.pendingCount)
	o.mu.Unlock()
	var sum int64
	err := o.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketEvents)).ForEach(func(k, v []byte) error {
			wall, data, sale, ok := storedSale(v)
			if !ok {
				wall, data, sale = decodedSale(v)
			}
			if !sale {
				return nil
			}
			val, _ := saleValue(events.KindSale, data)
			sales = append(sales, pendingSale{seq: seqOf(k), value: val, wall: wall})
			sum += val
			return nil
		})
	})
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.sales, o.salesValue = sales, sum
	o.mu.Unlock()
	return nil
}

// hlcWallKey starts the HLC of a stored envelope, after its origin.
var hlcWallKey = []byte(`},"hlc":{"wall":`)

// storedSale reads an envelope as this outbox stores it (encoder.append,
// or json.Marshal of an events.Envelope when a scrub rewrites one): its
// HLC wall, its body (a part of v) and whether it is a sale. ok is false
// when v is not laid out that way; the caller then decodes it.
//
// A backlog of a million events is read this way at every Open, so it
// looks for bytes rather than decoding: the envelope's fields before the
// HLC are a number, a UUID and an origin of tokens and numbers, none of
// which can hold hlcWallKey, so its first occurrence is the envelope's
// own, and kind and data follow the HLC in that order, data last.
func storedSale(v []byte) (wall int64, data []byte, sale, ok bool) {
	i := bytes.Index(v, hlcWallKey)
	if i < 0 || len(v) == 0 || v[len(v)-1] != '}' {
		return 0, nil, false, false
	}
	rest := v[i+len(hlcWallKey) : len(v)-1]
	wall, rest, ok = cutDigits(rest)
	if !ok {
		return 0, nil, false, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"logical":`)); !ok {
		return 0, nil, false, false
	}
	if _, rest, ok = cutDigits(rest); !ok {
		return 0, nil, false, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`},"kind":"`)); !ok {
		return 0, nil, false, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return 0, nil, false, false
	}
	kind := rest[:end]
	if data, ok = bytes.CutPrefix(rest[end+1:], []byte(`,"data":`)); !ok || len(data) == 0 {
		return 0, nil, false, false
	}
	return wall, data, string(kind) == string(events.KindSale), true
}

// cutDigits reads the plain decimal number (1 to 18 digits) b starts with.
func cutDigits(b []byte) (int64, []byte, bool) {
	n := 0
	var v int64
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	if n == 0 || n > 18 {
		return 0, b, false
	}
	return v, b[n:], true
}

// decodedSale is storedSale for any envelope, by decoding it; one that
// does not decode is no sale (the uplink reports undecodable events).
func decodedSale(v []byte) (wall int64, data []byte, sale bool) {
	if !bytes.Contains(v, []byte(`"kind":"sale"`)) {
		return 0, nil, false
	}
	var e events.Envelope
	if err := events.Unmarshal(v, &e); err != nil || e.Kind != events.KindSale {
		return 0, nil, false
	}
	return e.HLC.Wall, e.Data, true
}

// addSales records committed sales; o.mu held.
func (o *Outbox) addSales(ss []pendingSale) {
	for _, s := range ss {
		o.sales = append(o.sales, s)
		o.salesValue += s.value
	}
}

// ackSales forgets the sales with seq <= upTo; o.mu held.
func (o *Outbox) ackSales(upTo uint64) {
	n := 0
	for n < len(o.sales) && o.sales[n].seq <= upTo {
		o.salesValue -= o.sales[n].value
		n++
	}
	if n == len(o.sales) {
		o.sales = o.sales[:0]
		return
	}
	o.sales = o.sales[n:]
}

// unsynced fills st's unsynced-sales figures; o.mu held.
func (o *Outbox) unsynced(st *Stats) {
	st.UnsyncedSales = int64(len(o.sales))
	st.UnsyncedValue = o.salesValue
	if len(o.sales) > 0 {
		st.OldestUnsyncedSale = time.UnixMilli(o.sales[0].wall)
	}
}
