package rfid

import "errors"

// Configuration errors, returned by New, NewSweep and Config.Validate.
var (
	// ErrInvalidConfig: a zone or sweep setting is missing, out of range or
	// contradicts another (an antenna in two zones). The wrapping error
	// names the zone and field.
	ErrInvalidConfig = errors.New("rfid: invalid configuration")
)

// Decoding errors, returned by Decoder.Decode. Both are also counted in
// Stats and SweepResult; the smoother never returns them.
var (
	// ErrRejected: the EPC is malformed (not hex, wrong length, unknown
	// header, reserved partition, invalid serial). It names no product and
	// never will; see DecodeError.Reason.
	ErrRejected = errors.New("rfid: malformed EPC rejected")
	// ErrNotItem: the EPC is well formed but is not a trade item (SSCC,
	// SGLN, GIAI, GRAI... tags on cases, fixtures and assets).
	ErrNotItem = errors.New("rfid: EPC is not a trade item")
)

// Sweep errors.
var (
	// ErrSweepEnded: Observe or End was called on a sweep already ended.
	ErrSweepEnded = errors.New("rfid: sweep already ended")
	// ErrSweepTruncated: the sweep saw more distinct items than its
	// MaxItems bound, so its counts are too low and must not become an
	// absolute count event.
	ErrSweepTruncated = errors.New("rfid: sweep truncated, counts incomplete")
)

// DecodeError says why an EPC is not an item. It unwraps to ErrRejected or
// ErrNotItem and, for rejects, to the shared/epc error behind it.
type DecodeError struct {
	// Reason is set for rejects; Scheme for well-formed non-item tags.
	Reason Reason
	Scheme string
	kind   error
	err    error
}

func (e *DecodeError) Error() string {
	if e.kind == ErrNotItem {
		return ErrNotItem.Error() + ": " + e.Scheme
	}
	if e.err != nil {
		return ErrRejected.Error() + " (" + string(e.Reason) + "): " + e.err.Error()
	}
	return ErrRejected.Error() + " (" + string(e.Reason) + ")"
}

// Unwrap returns the sentinel and, for rejects, the epc error.
func (e *DecodeError) Unwrap() []error {
	if e.err != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.kind}
}
