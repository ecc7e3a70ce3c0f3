package events

import (
	"encoding/json"
)

// The hub reads every stock move body several times (validation at
// ingest, then the ledger, purchases and basket analytics before the
// transaction), hundreds of thousands a minute: through encoding/json's
// reflection that was the largest single cost of applying a batch. The
// bodies it sees are all of one plain shape, which fastStockMove reads
// directly; anything else goes to encoding/json (see fastScan).

// stockMoveNames are StockMove's JSON names, in field order.
var stockMoveNames = []string{"location", "lines", "order_id", "customer", "channel", "reason", "transfer_id", "to", "from", "method", "snapshot_at"}

// lineNames are Line's JSON names.
var lineNames = []string{"sku", "qty", "unit_price"}

// unmarshalStockMove is json.Unmarshal(data, m) for a zero m.
func unmarshalStockMove(data []byte, m *StockMove) error {
	if fastStockMove(data, m) {
		return nil
	}
	*m = StockMove{}
	return json.Unmarshal(data, m)
}

// fastStockMove decodes data into the zero m as json.Unmarshal would,
// when data is a plain stock move body; false when it is not (m is then
// left in any state).
func fastStockMove(data []byte, m *StockMove) bool {
	p := fastScan{b: data}
	ok := p.object(stockMoveNames, func(f int) bool {
		switch f {
		case 0:
			return p.strField(&m.Location)
		case 1:
			return p.lines(&m.Lines)
		case 2:
			return p.strField(&m.OrderID)
		case 3:
			// json.RawMessage keeps the value's bytes, null included.
			raw, ok := p.skipValue()
			if ok {
				m.Customer = append(json.RawMessage(nil), raw...)
			}
			return ok
		case 4:
			return p.strField(&m.Channel)
		case 5:
			return p.strField(&m.Reason)
		case 6:
			return p.strField(&m.TransferID)
		case 7:
			return p.strField(&m.To)
		case 8:
			return p.strField(&m.From)
		case 9:
			return p.strField(&m.Method)
		case 10:
			// time.Time decodes itself from the value's bytes, as it
			// does under encoding/json; its error goes to encoding/json
			// too, which reports it in its own words.
			raw, ok := p.skipValue()
			return ok && m.SnapshotAt.UnmarshalJSON(raw) == nil
		}
		_, ok := p.skipValue()
		return ok
	})
	return ok && p.end()
}

// strField reads a string field: a string, or null, which leaves it as
// it is.
func (p *fastScan) strField(dst *string) bool {
	if p.null() {
		return true
	}
	s, ok := p.str()
	*dst = s
	return ok
}

// lines reads the lines array: null sets it to nil, [] to an empty slice.
func (p *fastScan) lines(dst *[]Line) bool {
	if p.null() {
		*dst = nil
		return true
	}
	if !p.eat('[') {
		return false
	}
	out := make([]Line, 0, 4)
	if p.eat(']') {
		*dst = out
		return true
	}
	// The prices of the body's lines share one array.
	var prices []int64
	for {
		var l Line
		if !p.null() && !p.line(&l, &prices) {
			return false
		}
		out = append(out, l)
		if p.eat(']') {
			*dst = out
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// line reads one line object; null values leave the field as it is
// (qty, sku) or nil (unit_price).
func (p *fastScan) line(l *Line, prices *[]int64) bool {
	return p.object(lineNames, func(f int) bool {
		switch f {
		case 0:
			return p.strField(&l.SKU)
		case 1:
			if p.null() {
				return true
			}
			var ok bool
			l.Qty, ok = p.int()
			return ok
		case 2:
			if p.null() {
				return true
			}
			v, ok := p.int()
			if ok {
				if len(*prices) == cap(*prices) {
					*prices = make([]int64, 0, 4)
				}
				*prices = append(*prices, v)
				l.UnitPrice = &(*prices)[len(*prices)-1]
			}
			return ok
		}
		_, ok := p.skipValue()
		return ok
	})
}

// fastCustomerField returns the bytes of the customer field of a plain
// stock move body (nil when it has none), as decoding it into a struct
// of that one json.RawMessage field would; false when data is not plain
// (see fastScan), for encoding/json to decide. It reads no other field.
func fastCustomerField(data []byte) ([]byte, bool) {
	p := fastScan{b: data}
	var customer []byte
	ok := p.object(customerName, func(f int) bool {
		v, ok := p.skipValue()
		if f == 0 {
			customer = v
		}
		return ok
	})
	if !ok || !p.end() {
		return nil, false
	}
	return customer, true
}

var customerName = []string{"customer"}

// reservationMoveNames are ReservationMove's JSON names, in field order.
var reservationMoveNames = []string{"reservation_id", "location", "lines", "order_id", "channel"}

// unmarshalReservationMove is json.Unmarshal(data, m) for a zero m.
func unmarshalReservationMove(data []byte, m *ReservationMove) error {
	if fastReservationMove(data, m) {
		return nil
	}
	*m = ReservationMove{}
	return json.Unmarshal(data, m)
}

// fastReservationMove is fastStockMove for reservation bodies.
func fastReservationMove(data []byte, m *ReservationMove) bool {
	p := fastScan{b: data}
	ok := p.object(reservationMoveNames, func(f int) bool {
		switch f {
		case 0:
			return p.strField(&m.ReservationID)
		case 1:
			return p.strField(&m.Location)
		case 2:
			return p.lines(&m.Lines)
		case 3:
			return p.strField(&m.OrderID)
		case 4:
			return p.strField(&m.Channel)
		}
		_, ok := p.skipValue()
		return ok
	})
	return ok && p.end()
}

// identifyNames are Identify's JSON names, in field order.
var identifyNames = []string{"identifiers", "rule", "region"}

// UnmarshalIdentify is json.Unmarshal(data, b) for a zero b: the hub
// reads every identify body once per batch, and through encoding/json's
// reflection (a map of strings) that was the larger part of reading one.
func UnmarshalIdentify(data []byte, b *Identify) error {
	if fastIdentify(data, b) {
		return nil
	}
	*b = Identify{}
	return json.Unmarshal(data, b)
}

// fastIdentify is fastStockMove for identify bodies.
func fastIdentify(data []byte, b *Identify) bool {
	p := fastScan{b: data}
	ok := p.object(identifyNames, func(f int) bool {
		switch f {
		case 0:
			return p.stringMap((*map[string]string)(&b.Identifiers))
		case 1:
			return p.strField(&b.Rule)
		case 2:
			return p.strField(&b.Region)
		}
		_, ok := p.skipValue()
		return ok
	})
	return ok && p.end()
}

// stringMap reads an object of strings into a new map: null sets it to
// nil. A null value or a repeated key is left to encoding/json (it
// stores "" for the one and keeps the last of the other); so are keys
// that are not plain ASCII (see key), which it takes as they are.
func (p *fastScan) stringMap(dst *map[string]string) bool {
	if p.null() {
		*dst = nil
		return true
	}
	if !p.eat('{') {
		return false
	}
	out := make(map[string]string, 4)
	*dst = out
	if p.eat('}') {
		return true
	}
	for {
		lo, hi, ok := p.rawString(true)
		if !ok || !p.eat(':') {
			return false
		}
		v, ok := p.str()
		if !ok {
			return false
		}
		// The key shares the body's string, as the values do.
		k := p.keyString(lo, hi)
		if _, dup := out[k]; dup {
			return false
		}
		out[k] = v
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// keyString returns b[lo:hi] as a string, shared as str's values are.
func (p *fastScan) keyString(lo, hi int) string {
	if lo == hi {
		return ""
	}
	if len(p.b) > fastShareMax {
		return string(p.b[lo:hi])
	}
	if p.s == "" {
		p.s = string(p.b)
	}
	return p.s[lo:hi]
}
