package rfid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/omnisync/omnisync/shared/epc"
)

// Item is a serialised trade item identified by an SGTIN tag.
type Item struct {
	// EPC is the canonical EPC hex (upper case; SGTIN-198 padded to 52
	// digits), whatever case or padding the reader used.
	EPC string
	// GTIN is the GTIN-14; Serial the SGTIN serial (unescaped).
	GTIN, Serial string
	// Scheme is epc.SGTIN96 or epc.SGTIN198.
	Scheme epc.Scheme
}

// Reason names why an EPC was rejected. The set is small and fixed, so it
// is safe as a metric label.
type Reason string

// Reject reasons.
const (
	// ReasonLength: empty, too short or too long for its scheme, or
	// non-zero bits in the padding after the EPC.
	ReasonLength Reason = "bad_length"
	// ReasonHex: characters that are not hexadecimal digits.
	ReasonHex Reason = "not_hex"
	// ReasonHeader: a header byte no EPC scheme uses.
	ReasonHeader Reason = "unknown_header"
	// ReasonPartition: the reserved partition value 7, or a field that
	// overflows the digits its partition allows.
	ReasonPartition Reason = "bad_partition"
	// ReasonSerial: a serial outside the GS1 character set or empty.
	ReasonSerial Reason = "bad_serial"
	// ReasonInvalid: any other decoding failure.
	ReasonInvalid Reason = "invalid"
)

// DefaultDecodeCache is the number of EPCs a Decoder remembers when asked
// for 0: a busy store floor holds a few thousand tags in reader range.
const DefaultDecodeCache = 8192

// maxRawEPC bounds the raw string a read may carry. Longer strings are
// rejected without decoding or caching, so garbage cannot fill the cache
// with huge keys.
const maxRawEPC = 2 * epc.MaxHexLen

var errTooLong = fmt.Errorf("%w: longer than %d characters", epc.ErrHex, maxRawEPC)

type verdict uint8

const (
	verdictItem verdict = iota
	verdictNotItem
	verdictReject
)

// decoded is the cached outcome for one raw EPC string.
type decoded struct {
	verdict verdict
	item    Item
	// key is the item's identity (GTIN and serial): two EPC spellings of
	// one item (case, SGTIN-198 padding, filter value) share it.
	key    string
	reason Reason // rejects
	scheme string // non-items
	err    error  // *DecodeError for rejects and non-items
}

type cacheSlot struct {
	raw        string
	d          decoded
	prev, next int32
}

// Decoder turns raw EPC hex into items, remembering the last Capacity
// distinct strings (least recently used evicted) because a tag in range is
// read many times a second. It is safe for concurrent use; one Decoder can
// serve a Smoother and any number of Sweeps.
//
// It only ever reports a GTIN that shared/epc decoded from an SGTIN: a
// malformed or foreign tag is never guessed into a product.
type Decoder struct {
	mu         sync.Mutex
	capacity   int
	index      map[string]int32
	slots      []cacheSlot
	head, tail int32 // most and least recently used; -1 when empty
	hits, miss uint64
}

// NewDecoder returns a Decoder caching up to capacity EPCs
// (DefaultDecodeCache when capacity <= 0).
func NewDecoder(capacity int) *Decoder {
	if capacity <= 0 {
		capacity = DefaultDecodeCache
	}
	if capacity > 1<<30 {
		capacity = 1 << 30
	}
	// The cache grows as tags are seen rather than up front: most stores
	// never fill it.
	return &Decoder{capacity: capacity, index: make(map[string]int32), head: -1, tail: -1}
}

// Decode returns the item an EPC identifies, or an error wrapping
// ErrRejected (malformed; errors.As gives a *DecodeError with the Reason)
// or ErrNotItem (another scheme).
func (d *Decoder) Decode(rawEPC string) (Item, error) {
	r := d.lookup(rawEPC)
	if r.verdict != verdictItem {
		return Item{}, r.err
	}
	return r.item, nil
}

// CacheStats reports cache hits and misses since the Decoder was made, and
// how many EPCs it holds now.
func (d *Decoder) CacheStats() (hits, misses uint64, size int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits, d.miss, len(d.index)
}

// lookup returns the cached outcome for raw, decoding it on a miss.
func (d *Decoder) lookup(raw string) decoded {
	if len(raw) > maxRawEPC {
		return rejected(ReasonLength, errTooLong)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if i, ok := d.index[raw]; ok {
		d.hits++
		d.touch(i)
		return d.slots[i].d
	}
	d.miss++
	res := classify(raw)
	d.insert(raw, res)
	return res
}

// touch moves slot i to the head of the recency list.
func (d *Decoder) touch(i int32) {
	if d.head == i {
		return
	}
	d.unlink(i)
	d.pushFront(i)
}

func (d *Decoder) unlink(i int32) {
	s := &d.slots[i]
	if s.prev >= 0 {
		d.slots[s.prev].next = s.next
	} else {
		d.head = s.next
	}
	if s.next >= 0 {
		d.slots[s.next].prev = s.prev
	} else {
		d.tail = s.prev
	}
	s.prev, s.next = -1, -1
}

func (d *Decoder) pushFront(i int32) {
	s := &d.slots[i]
	s.prev, s.next = -1, d.head
	if d.head >= 0 {
		d.slots[d.head].prev = i
	}
	d.head = i
	if d.tail < 0 {
		d.tail = i
	}
}

func (d *Decoder) insert(raw string, res decoded) {
	var i int32
	if len(d.slots) < d.capacity {
		d.slots = append(d.slots, cacheSlot{})
		i = int32(len(d.slots) - 1)
	} else {
		i = d.tail
		d.unlink(i)
		delete(d.index, d.slots[i].raw)
	}
	d.slots[i] = cacheSlot{raw: raw, d: res, prev: -1, next: -1}
	d.index[raw] = i
	d.pushFront(i)
}

// classify decodes one raw EPC string (no caching).
func classify(raw string) decoded {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	t, err := epc.Decode(s)
	if err != nil {
		if scheme, ok := variableScheme(s); ok {
			return notItem(scheme)
		}
		return rejected(reasonFor(s, err), err)
	}
	if t.SGTIN == nil {
		return notItem(string(t.Scheme))
	}
	canon, encErr := t.Encode()
	if encErr != nil {
		// Decode accepted it, so this cannot happen; keep the reader's
		// spelling rather than invent one.
		canon = strings.ToUpper(s)
	}
	it := Item{EPC: canon, GTIN: t.SGTIN.GTIN(), Serial: t.SGTIN.Serial, Scheme: t.Scheme}
	// A space cannot occur in a GTIN or a CSET 82 serial, so the key is
	// unambiguous.
	return decoded{verdict: verdictItem, item: it, key: it.GTIN + " " + it.Serial}
}

func notItem(scheme string) decoded {
	return decoded{verdict: verdictNotItem, scheme: scheme,
		err: &DecodeError{Scheme: scheme, kind: ErrNotItem}}
}

func rejected(r Reason, err error) decoded {
	return decoded{verdict: verdictReject, reason: r,
		err: &DecodeError{Reason: r, kind: ErrRejected, err: err}}
}

// variableScheme recognises the variable-length schemes (CPI-var, ADI-var)
// that shared/epc identifies by header but does not decode. They are not
// items whatever follows the header, so their bodies go unchecked.
func variableScheme(s string) (string, bool) {
	if len(s) < 2 {
		return "", false
	}
	h, err := strconv.ParseUint(s[:2], 16, 8)
	if err != nil {
		return "", false
	}
	switch h {
	case 0x3B:
		return "adi-var", true
	case 0x3D:
		return "cpi-var", true
	}
	return "", false
}

// reasonFor maps a shared/epc error to a reject reason. epc.ErrHex covers
// both bad characters and bad lengths; the characters tell them apart.
func reasonFor(s string, err error) Reason {
	switch {
	case errors.Is(err, epc.ErrHex):
		for i := 0; i < len(s); i++ {
			if !isHex(s[i]) {
				return ReasonHex
			}
		}
		return ReasonLength
	case errors.Is(err, epc.ErrHeader):
		return ReasonHeader
	case errors.Is(err, epc.ErrPartition):
		return ReasonPartition
	case errors.Is(err, epc.ErrSerial):
		return ReasonSerial
	}
	return ReasonInvalid
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
