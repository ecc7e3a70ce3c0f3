package profile

import (
	"errors"
	"strconv"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: Load found no <name>.yaml under the profiles directory,
	// or the directory does not exist.
	ErrNotFound = errors.New("profile not found")
	// ErrDuplicate: two files under the profiles directory have the same
	// stem, so a device's profile name is ambiguous.
	ErrDuplicate = errors.New("profile name used by two files")
	// ErrInvalid: a profile file is unreadable, not YAML, or breaks the
	// schema. Every such error is an *Error naming the file and key.
	ErrInvalid = errors.New("invalid profile")
	// ErrBadScan: ParseBarcode could not turn a frame into a scan; the
	// error also wraps the gs1 sentinel that says why.
	ErrBadScan = errors.New("bad barcode scan")
	// ErrWrongMeaning: ParseBarcode on an RFID profile, or DecodeTags on a
	// scanner profile.
	ErrWrongMeaning = errors.New("profile does not describe this kind of device")
)

// Error is one problem with a profile file. It wraps ErrInvalid.
type Error struct {
	File string // as found under the directory given to Load
	Line int    // 1-based: the key's line, or its section's when the key is missing; 0 if unknown
	Key  string // dotted key, e.g. "framing.terminator"; empty for the whole file
	Msg  string
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }
