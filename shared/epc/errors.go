package epc

import "errors"

// Sentinel errors; every error from this package wraps one of them.
var (
	// ErrHex: the input is not hexadecimal or has the wrong length.
	ErrHex = errors.New("epc: bad hex")
	// ErrHeader: the EPC header is unknown or not supported.
	ErrHeader = errors.New("epc: unsupported header")
	// ErrPartition: the partition value is 7 or a field overflows its
	// decimal digit count.
	ErrPartition = errors.New("epc: invalid partition or field")
	// ErrFilter: the filter value is out of range.
	ErrFilter = errors.New("epc: invalid filter")
	// ErrSerial: the serial cannot be represented in the scheme.
	ErrSerial = errors.New("epc: invalid serial")
	// ErrURI: an EPC URI is malformed.
	ErrURI = errors.New("epc: invalid URI")
	// ErrGTIN: a GTIN is malformed or cannot take the requested form.
	ErrGTIN = errors.New("epc: invalid GTIN")
)

// Error gives the reason and the sentinel (see Unwrap).
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Msg }

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Kind }

func errf(kind error, msg string) error { return &Error{Kind: kind, Msg: msg} }
