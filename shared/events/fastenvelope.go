package events

import (
	"encoding/json"
	"math"

	"github.com/omnisync/omnisync/shared/hlc"
)

// Every event the hub ingests is an envelope decoded once; like the
// stock move bodies (fastbody.go), the envelopes agents write are of one
// plain shape that fastEnvelope reads without reflection, leaving the
// rest to encoding/json.

var (
	envelopeNames = []string{"v", "id", "origin", "hlc", "kind", "data"}
	originNames   = []string{"store", "device", "epoch", "seq"}
	hlcNames      = []string{"wall", "logical"}
)

// Unmarshal is json.Unmarshal(data, e) for a zero e, without Decode's
// checks, at the fast decoder's speed: for callers that read back their
// own stored envelopes (an outbox reopening a backlog of a million).
func Unmarshal(data []byte, e *Envelope) error { return unmarshalEnvelope(data, e) }

// unmarshalEnvelope is json.Unmarshal(data, e) for a zero e.
func unmarshalEnvelope(data []byte, e *Envelope) error {
	if fastEnvelope(data, e) {
		return nil
	}
	*e = Envelope{}
	return json.Unmarshal(data, e)
}

// fastEnvelope decodes data into the zero e as json.Unmarshal would,
// when data is a plain envelope; false when it is not (e is then left in
// any state).
func fastEnvelope(data []byte, e *Envelope) bool {
	p := fastScan{b: data}
	ok := p.object(envelopeNames, func(f int) bool {
		switch f {
		case 0:
			if p.null() {
				return true
			}
			v, ok := p.int()
			e.V = int(v)
			return ok && int64(e.V) == v
		case 1:
			return p.strField(&e.ID)
		case 2:
			return p.null() || p.origin(&e.Origin)
		case 3:
			return p.null() || p.hlc(&e.HLC)
		case 4:
			var k string
			ok := p.strField(&k)
			e.Kind = Kind(k)
			return ok
		case 5:
			raw, ok := p.skipValue()
			if ok {
				e.Data = append(json.RawMessage(nil), raw...)
			}
			return ok
		}
		_, ok := p.skipValue()
		return ok
	})
	return ok && p.end()
}

func (p *fastScan) origin(o *Origin) bool {
	return p.object(originNames, func(f int) bool {
		switch f {
		case 0:
			return p.strField(&o.Store)
		case 1:
			return p.strField(&o.Device)
		case 2:
			return p.uintField(&o.Epoch)
		case 3:
			return p.uintField(&o.Seq)
		}
		_, ok := p.skipValue()
		return ok
	})
}

func (p *fastScan) hlc(t *hlc.Timestamp) bool {
	return p.object(hlcNames, func(f int) bool {
		switch f {
		case 0:
			if p.null() {
				return true
			}
			v, ok := p.int()
			t.Wall = v
			return ok
		case 1:
			var v uint64
			if !p.uintField(&v) || v > math.MaxUint32 {
				return false
			}
			t.Logical = uint32(v)
			return true
		}
		_, ok := p.skipValue()
		return ok
	})
}

// uintField reads an unsigned field: a number, or null, which leaves it
// as it is.
func (p *fastScan) uintField(dst *uint64) bool {
	if p.null() {
		return true
	}
	v, ok := p.uint()
	*dst = v
	return ok
}

// object reads an object whose keys are matched against names (see
// fieldOf) and hands each key's index (-1: none of them) to field, which
// must consume the value. A repeated field is left to encoding/json.
func (p *fastScan) object(names []string, field func(f int) bool) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	var seen uint64
	for {
		k, ok := p.key()
		if !ok {
			return false
		}
		f := fieldOf(k, names)
		if f >= 0 {
			if seen&(1<<f) != 0 {
				return false
			}
			seen |= 1 << f
		}
		if !field(f) {
			return false
		}
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}
