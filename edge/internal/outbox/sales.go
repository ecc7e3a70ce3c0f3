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
// made to rebuild its freelist), decoding only the sales.
func (o *Outbox) loadSales() error {
	saleKind := []byte(`"kind":"sale"`)
	var sales []pendingSale
	var sum int64
	err := o.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketEvents)).ForEach(func(k, v []byte) error {
			if !bytes.Contains(v, saleKind) {
				return nil
			}
			var e events.Envelope
			if err := events.Unmarshal(v, &e); err != nil {
				return nil // the uplink reports undecodable events
			}
			if val, ok := saleValue(e.Kind, e.Data); ok {
				sales = append(sales, pendingSale{seq: seqOf(k), value: val, wall: e.HLC.Wall})
				sum += val
			}
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
