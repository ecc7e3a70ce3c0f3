package serialport

import "errors"

// Configuration errors, returned by New and Config.Validate.
var (
	// ErrInvalidConfig: a setting is missing or out of range (no path, baud 0 or
	// unsupported, data bits not 5..8, parity not N/E/O, ...). The wrapping error
	// names the device and the field.
	ErrInvalidConfig = errors.New("serialport: invalid configuration")
)

// Lifecycle errors, returned by Run and Close.
var (
	// ErrRunning: Run was called while another Run of the same Port is active.
	ErrRunning = errors.New("serialport: port is already running")
	// ErrClosed: Run was called after Close.
	ErrClosed = errors.New("serialport: port is closed")
	// ErrCloseTimeout: Close gave up waiting for Run to return because a read did
	// not come back within ReadTimeout plus a grace period (a driver that ignores
	// VTIME). Run still returns as soon as that read does.
	ErrCloseTimeout = errors.New("serialport: close timed out waiting for a read")
	// ErrNotOpen: Write was called while the device is not open.
	ErrNotOpen = errors.New("serialport: device not open")
)

// Why a device was lost or cannot be used. They are never returned by Run; they are
// wrapped into Status.LastError and the log, and let tests and callers that read the
// log branch on the cause.
var (
	// ErrDeviceGone: the device vanished: its node no longer exists, a read failed
	// with an I/O error, or the tty was hung up (reads return nothing at once).
	ErrDeviceGone = errors.New("serialport: device gone")
	// ErrDeviceReplaced: the configured path now names a different device node than
	// the one that is open (a re-plug created a new node, or a by-id symlink moved).
	ErrDeviceReplaced = errors.New("serialport: device node replaced")
	// ErrUnusable: opening failed in a way retrying cannot fix (the path is not a
	// terminal, the settings are rejected). The Port enters StateFailed.
	ErrUnusable = errors.New("serialport: device unusable")
)
