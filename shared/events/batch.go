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
func SplitBatch(data []byte) ([]json.RawMessage, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBatch, err)
	}
	switch {
	case len(elems) == 0:
		return nil, fmt.Errorf("%w: no events", ErrBatch)
	case len(elems) > MaxBatchEvents:
		return nil, fmt.Errorf("%w: %d events, at most %d", ErrBatch, len(elems), MaxBatchEvents)
	}
	return elems, nil
}
