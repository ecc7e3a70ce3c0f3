package outbox

import "errors"

// Errors callers branch on with errors.Is. Returned errors wrap them with the
// detail (path, sizes, epochs).
var (
	// ErrFull is returned by Append when the event's priority class has used
	// its share of the disk budget, or when the filesystem holding the outbox
	// has less free space than Options.MinFreeDisk (or returned ENOSPC). The
	// HTTP layer answers 507. Nothing already accepted is dropped to make room.
	ErrFull = errors.New("outbox full")

	// ErrClosed is returned by every method called after Close, and by
	// Appends still queued when Close was called.
	ErrClosed = errors.New("outbox closed")

	// ErrEpochMismatch is returned by Ack for an epoch other than this
	// outbox's: the hub is acknowledging a previous incarnation of the
	// device. The Ack does nothing.
	ErrEpochMismatch = errors.New("outbox: ack for another epoch")

	// ErrLocked is returned by Open when another process (or another Open in
	// this one) holds the bbolt file lock: only one agent may own an outbox.
	ErrLocked = errors.New("outbox file is locked by another process")

	// ErrCorrupt is returned by Open when the file is not a bbolt database or
	// its meta bucket is missing or inconsistent, and by Ack or Read when an
	// event the meta promises is not there.
	ErrCorrupt = errors.New("outbox corrupt")

	// ErrWrongIdentity is returned by Open when the file belongs to another
	// store or device than Options says: a store's outbox is never silently
	// re-labelled. Move the file aside (a new epoch is minted) or fix the
	// configuration.
	ErrWrongIdentity = errors.New("outbox belongs to another store or device")

	// ErrTooLarge is returned by Append when one encoded envelope would
	// exceed events.MaxEventBytes, which the hub refuses (HTTP 413).
	ErrTooLarge = errors.New("event too large")

	// ErrInvalidKey is returned by AppendOnce for an empty, over-long or
	// non-printable idempotency key.
	ErrInvalidKey = errors.New("invalid idempotency key")

	// ErrKeyReused is returned by AppendOnce when the key was first used
	// for a different request (other kinds or bodies): a client bug that
	// must not be answered with the first request's result.
	ErrKeyReused = errors.New("idempotency key reused for a different request")

	// ErrInvalidOption is returned by Open for unusable Options.
	ErrInvalidOption = errors.New("outbox: invalid option")
)
