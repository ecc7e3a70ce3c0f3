package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A batch message carries consecutive events of one device as a JSON array
// of envelopes. JetStream's cost is per message (store, index, deliver,
// ack), so an agent catching up after an outage would spend most of its
// time and the broker's on per-message overhead if every event were its own
// message; a batch spends it once for many. Each element is an ordinary
// envelope: the hub decodes, checks and deduplicates every event on its
// own, so a bad element is dead-lettered alone and a batch regrouped after
// a republish changes nothing.
const (
	// MaxBatchEvents is the most events a batch message may carry.
	MaxBatchEvents = 1000
	// HeaderBatch names the header that carries the number of events in a
	// batch message (informational: the body is authoritative).
	HeaderBatch = "Omni-Batch"
)

// ErrBatch reports a batch message that cannot be split into envelopes.
var ErrBatch = errors.New("events: malformed batch")

// IsBatch reports whether a message body is a batch (a JSON array) rather
// than a single envelope.
func IsBatch(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}

// AppendBatch appends the batch message holding the encoded envelopes envs,
// in order, to dst.
func AppendBatch(dst []byte, envs ...[]byte) []byte {
	dst = append(dst, '[')
	for i, e := range envs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e...)
	}
	return append(dst, ']')
}

// SplitBatch returns the encoded envelopes of a batch message, in order.
// They share data's memory. The hub splits every batch it receives, so the
// body is checked and cut in one pass (fastSplit), rather than decoded
// into json.RawMessage, which scans every element twice more and copies
// it; bodies that fail that pass (and the unusual ones: deep
// nesting) are checked whole (json.Valid) and then cut at their top-level
// commas, which also says what is wrong with them.
func SplitBatch(data []byte) ([]json.RawMessage, error) {
	if elems, ok := fastSplit(data); ok {
		return elems, nil
	}
	return splitChecked(data)
}

// fastSplit is SplitBatch of a well-formed batch of 1 to MaxBatchEvents
// events, checking each element's syntax as strictly as json.Valid does
// while it cuts (fastScan.skipValue); false for anything else, which
// splitChecked then decides.
func fastSplit(data []byte) ([]json.RawMessage, bool) {
	p := fastScan{b: data}
	if !p.eat('[') || p.eat(']') {
		return nil, false
	}
	elems := make([]json.RawMessage, 0, 16)
	for {
		if len(elems) == MaxBatchEvents {
			return nil, false
		}
		v, ok := p.skipValue()
		if !ok {
			return nil, false
		}
		elems = append(elems, json.RawMessage(v[:len(v):len(v)]))
		if p.eat(']') {
			return elems, p.end()
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// CutBatch cuts a batch of envelopes (JSON objects) at its top-level
// commas without checking the syntax inside them: a cheaper first pass
// for a caller that decodes every element anyway. ok is false for
// anything it cannot cut as a batch of 1 to MaxBatchEvents objects. The
// elements share data's memory.
//
// Its cut is SplitBatch's when every element is valid JSON: the batch is
// then valid JSON itself, since the separators between the elements are
// checked. A caller that finds an element which is not valid JSON must
// decide with SplitBatch instead (the whole body is then malformed).
func CutBatch(data []byte) (elems []json.RawMessage, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	elems = make([]json.RawMessage, 0, 16)
	for {
		if len(elems) == MaxBatchEvents {
			return nil, false
		}
		end, ok := cutObject(data, i)
		if !ok {
			return nil, false
		}
		elems = append(elems, json.RawMessage(data[i:end:end]))
		i = skipSpace(data, end)
		if i == len(data) {
			return nil, false
		}
		switch data[i] {
		case ']':
			return elems, skipSpace(data, i+1) == len(data)
		case ',':
			i = skipSpace(data, i+1)
		default:
			return nil, false
		}
	}
}

// cutObject returns the end of the object that starts at i, going by its
// brackets and strings only; ok is false when there is none.
func cutObject(data []byte, i int) (end int, ok bool) {
	if i == len(data) || data[i] != '{' {
		return 0, false
	}
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			// To the closing quote: the next one not escaped, that is
			// not after an odd number of backslashes.
			for {
				j := bytes.IndexByte(data[i+1:], '"')
				if j < 0 {
					return 0, false
				}
				i += 1 + j
				n := 0
				for data[i-1-n] == '\\' {
					n++
				}
				if n%2 == 0 {
					break
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// splitChecked is SplitBatch checking the whole body first.
func splitChecked(data []byte) ([]json.RawMessage, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: not valid JSON", ErrBatch)
	}
	i := skipSpace(data, 0)
	if data[i] != '[' {
		return nil, fmt.Errorf("%w: not a JSON array", ErrBatch)
	}
	i = skipSpace(data, i+1)
	if data[i] == ']' {
		return nil, fmt.Errorf("%w: no events", ErrBatch)
	}
	var elems []json.RawMessage
	for {
		start := i
		i = valueEnd(data, i)
		if len(elems) == MaxBatchEvents {
			return nil, fmt.Errorf("%w: more than %d events, at most %d", ErrBatch, MaxBatchEvents, MaxBatchEvents)
		}
		elems = append(elems, json.RawMessage(data[start:i:i]))
		i = skipSpace(data, i)
		if data[i] != ',' {
			return elems, nil // ']': data is valid JSON
		}
		i = skipSpace(data, i+1)
	}
}

// skipSpace returns the index of the first byte at or after i in data that
// is not JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at i in
// data, which must be valid JSON.
func valueEnd(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing array
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i // the end of a number or literal
			}
		}
	}
	return i
}
