package syncproto

// Customer requests: what a store's agents ask the hub about customers,
// on subjects.Cust(store, op), and what the hub publishes to them.
//
// The store asking is always the subject's (its credentials allow only its
// own), never a body's: the hub answers store S only about S.
//
//	card     CardRequest -> CardReply: the card of a shopper who identified
//	         at the till or kiosk, if that shopper ever identified at S.
//	match    MatchRequest -> MatchReply: which of the identifiers the agent
//	         holds (raw, as tills typed them) erasure E names. The agent
//	         needs it to find the person's events in its outbox: the hub
//	         keeps only keyed digests of an erased person's identifiers, and
//	         the key never leaves the hub, so the agent cannot compute them;
//	         the hub normalises what the agent sends (with the store's
//	         country for phone numbers) and compares digests. Nothing about
//	         the person travels to the store: the notice names an erasure
//	         and an opaque master id, and the reply only indexes into what
//	         the agent sent (identifiers it holds and sends the hub anyway,
//	         in its events).
//	receipt  Receipt -> Reply: the agent has purged its card cache and
//	         scrubbed its outbox for erasure E. Idempotent: the first
//	         receipt of a store counts, later ones change nothing.
//
// Erasure notices are not requests: the hub writes one ErasureNotice per
// store and erasure into the bucket downsync.ErasureBucket, under
// downsync.ErasureKey(store, erasure), which only that store can read
// (deploy/nats); an agent offline for days reads every notice when it
// returns.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of customer requests.
const (
	// MaxCardIdentifiers bounds the identifiers of one card request.
	MaxCardIdentifiers = 16
	// MaxIdentifierType bounds an identifier type's name, MaxIdentifierValue
	// a raw value.
	MaxIdentifierType  = 32
	MaxIdentifierValue = 320
	// MaxMatchIdentifiers bounds the identifiers of one match request; an
	// agent with more sends several.
	MaxMatchIdentifiers = 1000
	// MaxRequestBytes bounds any customer request body.
	MaxRequestBytes = 512 << 10
	// MaxErasureID bounds an erasure id.
	MaxErasureID = 128
)

// Reply codes: Code of a reply that carries an Error.
const (
	// CodeInvalid: the request is malformed; sending it again will not help.
	CodeInvalid = "invalid"
	// CodeNotFound: no such customer at this store (card), no such erasure
	// pending for this store (match, receipt).
	CodeNotFound = "not_found"
	// CodeUnavailable: the hub could not answer now; try again later.
	CodeUnavailable = "unavailable"
)

// ErrInvalidRequest wraps every customer request validation failure.
var ErrInvalidRequest = errors.New("syncproto: invalid customer request")

// Reply is the answer to a receipt, and the error part of every reply.
type Reply struct {
	// Error says what went wrong (no personal data); empty on success.
	Error string `json:"error,omitempty"`
	// Code is one of the Code constants when Error is set.
	Code string `json:"code,omitempty"`
}

// Identifier is one raw identifier as a till or kiosk captured it: a type
// (loyalty, email, phone, account, app; empty when the agent cannot tell,
// such as a bare customer field of a sale) and the value as typed. It is
// personal data: never log it.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// CardRequest asks for the card of the shopper with these identifiers:
// type -> raw value, as in an identify event's body.
type CardRequest struct {
	Identifiers map[string]string `json:"identifiers"`
	// Device is the asking device, for the hub's logs.
	Device string `json:"device,omitempty"`
}

// Validate checks r's shape (not the values' formats, which the hub
// normalises).
func (r CardRequest) Validate() error {
	if len(r.Identifiers) == 0 {
		return fmt.Errorf("%w: no identifiers", ErrInvalidRequest)
	}
	if len(r.Identifiers) > MaxCardIdentifiers {
		return fmt.Errorf("%w: %d identifiers, at most %d", ErrInvalidRequest, len(r.Identifiers), MaxCardIdentifiers)
	}
	for t, v := range r.Identifiers {
		if err := validIdentifier(t, v, false); err != nil {
			return err
		}
	}
	return nil
}

func validIdentifier(t, v string, typeOptional bool) error {
	switch {
	case t == "" && !typeOptional:
		return fmt.Errorf("%w: an identifier without a type", ErrInvalidRequest)
	case len(t) > MaxIdentifierType || !isTypeName(t):
		return fmt.Errorf("%w: identifier type %q: lower-case letters and '_', at most %d", ErrInvalidRequest, clip(t), MaxIdentifierType)
	case strings.TrimSpace(v) == "":
		return fmt.Errorf("%w: identifier %q has no value", ErrInvalidRequest, t)
	case len(v) > MaxIdentifierValue:
		return fmt.Errorf("%w: identifier %q is longer than %d bytes", ErrInvalidRequest, t, MaxIdentifierValue)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: identifier %q is not valid UTF-8", ErrInvalidRequest, t)
	}
	return nil
}

func isTypeName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// clip keeps an error message short whatever a caller sent.
func clip(s string) string {
	if len(s) > MaxIdentifierType {
		return s[:MaxIdentifierType] + "..."
	}
	return s
}

// Card is what a till or kiosk shows of a shopper who identified: enough
// to greet them and respect their consent, nothing more. Personal data:
// never log it.
type Card struct {
	// Customer is the shopper's master id (opaque).
	Customer  string `json:"customer"`
	FirstName string `json:"first_name,omitempty"`
	Tier      string `json:"tier,omitempty"`
	// Consent says, per purpose (marketing_email, sms, push,
	// personalisation, analytics), whether the shopper may be addressed
	// for it now, in store.
	Consent map[string]bool `json:"consent"`
	// Recent are the shopper's latest purchases, newest first.
	Recent []Purchase `json:"recent"`
	// AsOfMS is the hub's wall clock (Unix ms) when it made the card.
	AsOfMS int64 `json:"as_of_ms"`
}

// Purchase is one line of a card's recent purchases.
type Purchase struct {
	// AtMS is when it was bought (Unix ms).
	AtMS    int64  `json:"at_ms"`
	Store   string `json:"store,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Items counts the units bought; TotalMinor their price in minor
	// units of Currency, when the sale carried prices.
	Items      int64  `json:"items"`
	TotalMinor int64  `json:"total_minor,omitempty"`
	Currency   string `json:"currency,omitempty"`
}

// CardReply answers a CardRequest: a card, or an error.
type CardReply struct {
	Card *Card `json:"card,omitempty"`
	Reply
}

// ErasureNotice is the value of an erasure's key in the erasure bucket:
// store S must purge customer Customer from its caches and outbox and
// answer with a Receipt.
type ErasureNotice struct {
	Erasure string `json:"erasure"`
	// Customer is the erased master id (opaque: it names nobody any more).
	Customer string `json:"customer"`
	// Store is the store the notice is for (it agrees with its key).
	Store string `json:"store"`
	// RequestedMS is when HQ asked (Unix ms).
	RequestedMS int64 `json:"requested_ms"`
}

// Validate checks n names an erasure, a customer and a store.
func (n ErasureNotice) Validate() error {
	switch {
	case n.Erasure == "" || len(n.Erasure) > MaxErasureID:
		return fmt.Errorf("%w: erasure id of %d bytes", ErrInvalidRequest, len(n.Erasure))
	case n.Customer == "":
		return fmt.Errorf("%w: erasure %s names no customer", ErrInvalidRequest, n.Erasure)
	case n.Store == "":
		return fmt.Errorf("%w: erasure %s names no store", ErrInvalidRequest, n.Erasure)
	}
	return nil
}

// MatchRequest asks which of Identifiers erasure Erasure names.
type MatchRequest struct {
	Erasure     string       `json:"erasure"`
	Identifiers []Identifier `json:"identifiers"`
}

// Validate checks r's shape.
func (r MatchRequest) Validate() error {
	if r.Erasure == "" || len(r.Erasure) > MaxErasureID {
		return fmt.Errorf("%w: erasure id of %d bytes", ErrInvalidRequest, len(r.Erasure))
	}
	if len(r.Identifiers) > MaxMatchIdentifiers {
		return fmt.Errorf("%w: %d identifiers, at most %d", ErrInvalidRequest, len(r.Identifiers), MaxMatchIdentifiers)
	}
	for _, id := range r.Identifiers {
		if err := validIdentifier(id.Type, id.Value, true); err != nil {
			return err
		}
	}
	return nil
}

// MatchReply answers a MatchRequest: the positions (in the request's
// Identifiers) of those the erasure names, ascending.
type MatchReply struct {
	Matches []int `json:"matches"`
	Reply
}

// Receipt says the sending device has carried erasure Erasure out.
type Receipt struct {
	Erasure string `json:"erasure"`
	Device  string `json:"device"`
	// AtMS is when the device finished (Unix ms, its clock).
	AtMS int64 `json:"at_ms"`
	// CardsPurged counts the cached cards removed, EventsScrubbed the
	// outbox events whose customer fields were removed.
	CardsPurged    int `json:"cards_purged"`
	EventsScrubbed int `json:"events_scrubbed"`
}

// Validate checks r names an erasure and a device.
func (r Receipt) Validate() error {
	switch {
	case r.Erasure == "" || len(r.Erasure) > MaxErasureID:
		return fmt.Errorf("%w: erasure id of %d bytes", ErrInvalidRequest, len(r.Erasure))
	case r.Device == "":
		return fmt.Errorf("%w: receipt names no device", ErrInvalidRequest)
	case r.AtMS <= 0:
		return fmt.Errorf("%w: receipt without a time", ErrInvalidRequest)
	}
	return nil
}

// Decode parses a customer request body into v (a *CardRequest,
// *MatchRequest or *Receipt) and validates it: unknown fields are
// refused, as is a body over MaxRequestBytes.
func Decode(b []byte, v interface{ Validate() error }) error {
	if len(b) > MaxRequestBytes {
		return fmt.Errorf("%w: body of %d bytes, at most %d", ErrInvalidRequest, len(b), MaxRequestBytes)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value", ErrInvalidRequest)
	}
	return v.Validate()
}
