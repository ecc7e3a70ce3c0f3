package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Kind names what happened.
type Kind string

// Inventory kinds: each carries a StockMove.
const (
	KindSale        Kind = "sale"
	KindReturn      Kind = "return"
	KindReceipt     Kind = "receipt"
	KindAdjust      Kind = "adjust" // signed quantities
	KindCount       Kind = "count"  // absolute quantities
	KindTransferOut Kind = "transfer_out"
	KindTransferIn  Kind = "transfer_in"
)

// Reservation kinds: each carries a ReservationMove.
const (
	KindReserve Kind = "reserve"
	KindRelease Kind = "release"
	KindFulfil  Kind = "fulfil"
)

// Operational kinds.
const (
	KindDeviceStatus Kind = "device_status"
	KindScan         Kind = "scan"
)

// Fitting-room kinds: an RFID-tagged item entered or left a zone. Each
// carries a FittingRoom body.
const (
	KindEnter Kind = "enter"
	KindLeave Kind = "leave"
)

// Class says how precious an event is when the outbox runs short of disk.
type Class int

const (
	// ClassCritical events (sales, counts, reservations) are never dropped;
	// when the budget is exhausted new ones are refused (507), old ones kept.
	ClassCritical Class = iota
	// ClassNormal events are refused earlier than critical ones, to leave
	// headroom for sales.
	ClassNormal
	// ClassCompactable events (raw reads, scans) may be evicted, oldest
	// first, to make room for critical ones.
	ClassCompactable
)

func (c Class) String() string {
	switch c {
	case ClassCritical:
		return "critical"
	case ClassNormal:
		return "normal"
	case ClassCompactable:
		return "compactable"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

type kindSpec struct {
	class Class
	// validate checks the body and returns it normalised: defaults such as
	// the location filled in from defaultLocation, unknown fields kept.
	validate func(data json.RawMessage, defaultLocation string) (json.RawMessage, error)
}

// kinds is the registry of every kind this build understands. It is a
// read-only table; growing the product means adding a row.
var kinds = map[Kind]kindSpec{
	KindSale:         {ClassCritical, validateStockMove(KindSale)},
	KindReturn:       {ClassCritical, validateStockMove(KindReturn)},
	KindReceipt:      {ClassCritical, validateStockMove(KindReceipt)},
	KindAdjust:       {ClassCritical, validateStockMove(KindAdjust)},
	KindCount:        {ClassCritical, validateStockMove(KindCount)},
	KindTransferOut:  {ClassCritical, validateStockMove(KindTransferOut)},
	KindTransferIn:   {ClassCritical, validateStockMove(KindTransferIn)},
	KindReserve:      {ClassCritical, validateReservation(KindReserve)},
	KindRelease:      {ClassCritical, validateReservation(KindRelease)},
	KindFulfil:       {ClassCritical, validateReservation(KindFulfil)},
	KindDeviceStatus: {ClassNormal, validateDeviceStatus},
	KindScan:         {ClassCompactable, validateScan},
	KindEnter:        {ClassNormal, validateFittingRoom(KindEnter)},
	KindLeave:        {ClassNormal, validateFittingRoom(KindLeave)},
	KindReview:       {ClassNormal, validateReview},
	KindAssist:       {ClassNormal, validateAssist},
	KindLineSet:      {ClassNormal, validateLineSet},
	KindClaim:        {ClassCritical, validateClaim},
	KindCheckout:     {ClassCritical, validateCheckout},
	KindSurvey:       {ClassNormal, validateSurvey},
	KindIdentify:     {ClassNormal, validateIdentify},
	KindUpdate:       {ClassNormal, validateUpdate},
	KindConsent:      {ClassCritical, validateConsent},
	KindErase:        {ClassCritical, validateErase},
}

// Known reports whether this build understands kind k.
func Known(k Kind) bool { _, ok := kinds[k]; return ok }

// Kinds lists every known kind, sorted.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ClassOf returns the durability class of k (critical for unknown kinds, so
// nothing unknown is ever evicted).
func ClassOf(k Kind) Class {
	if s, ok := kinds[k]; ok {
		return s.class
	}
	return ClassCritical
}

// IsStockDelta reports whether k changes on_hand by the signed line
// quantities (everything but count and the reservation kinds).
func IsStockDelta(k Kind) bool {
	switch k {
	case KindSale, KindReturn, KindReceipt, KindAdjust, KindTransferOut, KindTransferIn:
		return true
	}
	return false
}

// ValidateBody checks data for kind k and returns it normalised (with no
// default location). Field paths in errors are relative to the body.
func ValidateBody(k Kind, data json.RawMessage) (json.RawMessage, error) {
	return normaliseBody(k, data, "")
}

func normaliseBody(k Kind, data json.RawMessage, defaultLocation string) (json.RawMessage, error) {
	spec, ok := kinds[k]
	if !ok {
		if k == "" {
			return nil, fieldErr("kind", "missing")
		}
		return nil, fieldErr("kind", fmt.Sprintf("unknown kind %q (known: %v)", string(k), Kinds()))
	}
	trimmed, err := trimBody(data)
	if err != nil {
		return nil, err
	}
	return spec.validate(trimmed, defaultLocation)
}

// checkBody is ValidateBody that returns, for the kinds whose bodies the
// hub reads again (stock and reservation moves), the body it decoded
// (*stockBody, *reservationBody; see kept.go), and nil for the others.
// spec is k's, which the caller looked up.
func checkBody(spec kindSpec, k Kind, data json.RawMessage) (any, error) {
	trimmed, err := trimBody(data)
	if err != nil {
		return nil, err
	}
	switch {
	case IsStockDelta(k) || k == KindCount:
		_, b, err := checkStockMove(k, trimmed, "")
		return b, err
	case k == KindReserve || k == KindRelease || k == KindFulfil:
		_, b, err := checkReservation(k, trimmed, "")
		return b, err
	}
	_, err = spec.validate(trimmed, "")
	return nil, err
}

// trimBody returns body data without the surrounding space, or why it
// is not a body.
func trimBody(data json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, fieldErr("", "missing data object")
	}
	if trimmed[0] != '{' {
		return nil, fieldErr("", "must be a JSON object")
	}
	return trimmed, nil
}
