package events

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// CurrentVersion is the envelope schema version this build writes and reads.
const CurrentVersion = 1

// Size limits shared by the edge API and the hub.
const (
	// MaxEventBytes bounds one encoded envelope.
	MaxEventBytes = 64 << 10
	// MaxLines bounds the lines of one event (a very large basket).
	MaxLines = 500
	// MaxDeltaQty bounds one line of a sale, return, receipt or adjust.
	MaxDeltaQty = 100_000
	// MaxCountQty bounds an absolute count.
	MaxCountQty = 10_000_000
	// MaxTokenLen bounds store, device and location names.
	MaxTokenLen = 64
	// MaxSKULen bounds SKUs.
	MaxSKULen = 64
)

// Errors callers branch on.
var (
	// ErrInvalid wraps every validation failure (as a *FieldError).
	ErrInvalid = errors.New("invalid event")
	// ErrUnsupportedVersion is returned for envelopes newer than this build.
	ErrUnsupportedVersion = errors.New("unsupported event schema version")
)

// Origin says where an event was born. (Store, Device, Epoch, Seq) is unique
// and is what the hub deduplicates on.
type Origin struct {
	Store  string `json:"store"`
	Device string `json:"device"`
	// Epoch is minted when the device's outbox is created.
	Epoch uint64 `json:"epoch"`
	// Seq is strictly increasing per (Device, Epoch), starting at 1.
	Seq uint64 `json:"seq"`
}

// Envelope is one event as stored in the outbox and carried on the wire.
type Envelope struct {
	V      int             `json:"v"`
	ID     string          `json:"id"`
	Origin Origin          `json:"origin"`
	HLC    hlc.Timestamp   `json:"hlc"`
	Kind   Kind            `json:"kind"`
	Data   json.RawMessage `json:"data"`
	// body is Data as Decode's checks decoded it, for StockMove and the
	// other readers of a body (kept.go); never encoded.
	body any
}

// Decode parses and validates one encoded envelope. A version newer than
// CurrentVersion yields the decoded envelope together with an error wrapping
// ErrUnsupportedVersion, so the caller can keep it.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if len(b) > MaxEventBytes {
		return e, fieldErr("", fmt.Sprintf("event is %d bytes, the limit is %d", len(b), MaxEventBytes))
	}
	if err := unmarshalEnvelope(b, &e); err != nil {
		return e, jsonFieldErr("", err)
	}
	return e, e.validate(true)
}

// Validate checks the envelope and its body.
func (e *Envelope) Validate() error { return e.validate(false) }

// validate is Validate; keep says to keep the body it decoded on e
// (kept.go), which Decode does for the envelope it makes.
func (e *Envelope) validate(keep bool) error {
	if e.V > CurrentVersion {
		return fmt.Errorf("%w: version %d, this build reads up to %d", ErrUnsupportedVersion, e.V, CurrentVersion)
	}
	if e.V < 1 {
		return fieldErr("v", "must be a schema version >= 1")
	}
	if !ids.ValidEventID(e.ID) {
		return fieldErr("id", "must be a UUID")
	}
	if err := ValidToken(e.Origin.Store); err != nil {
		return fieldErr("origin.store", err.Error())
	}
	if err := ValidToken(e.Origin.Device); err != nil {
		return fieldErr("origin.device", err.Error())
	}
	if e.Origin.Epoch == 0 {
		return fieldErr("origin.epoch", "must be set")
	}
	if e.Origin.Seq == 0 {
		return fieldErr("origin.seq", "must be >= 1")
	}
	if e.HLC.Wall <= 0 {
		return fieldErr("hlc.wall", "must be set")
	}
	spec, ok := kinds[e.Kind]
	if !ok {
		return fieldErr("kind", fmt.Sprintf("unknown kind %q", string(e.Kind)))
	}
	body, err := checkBody(spec, e.Kind, e.Data)
	if err != nil {
		return prefix("data", err)
	}
	if keep {
		e.keep(body)
	}
	return nil
}

// Stamp is the total order the hub uses between events: HLC first, then the
// event id so that two devices stamping the same instant still order the
// same way on every replica.
type Stamp struct {
	HLC hlc.Timestamp
	ID  string
}

// Stamp returns the envelope's ordering key.
func (e *Envelope) Stamp() Stamp { return Stamp{HLC: e.HLC, ID: e.ID} }

// Compare orders stamps by HLC, then id.
func (s Stamp) Compare(o Stamp) int {
	if c := s.HLC.Compare(o.HLC); c != 0 {
		return c
	}
	switch {
	case s.ID < o.ID:
		return -1
	case s.ID > o.ID:
		return 1
	}
	return 0
}

// ValidToken checks a store, device or location name: 1 to MaxTokenLen of
// ASCII letters, digits, '-' and '_'. These names become NATS subject tokens,
// so dots, spaces and wildcards are refused.
func ValidToken(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > MaxTokenLen {
		return fmt.Errorf("must be at most %d characters", MaxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("character %q not allowed (letters, digits, '-' and '_' only)", c)
		}
	}
	return nil
}
