package productcache

import "errors"

// Errors callers branch on with errors.Is. Lookup also returns errors
// wrapping downsync.ErrInvalidCode and downsync.ErrNotFound.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("product cache closed")

	// ErrLocked is returned by Open when another process (or another Open
	// in this one) holds the file: only one agent may own a cache.
	ErrLocked = errors.New("product cache file is locked by another process")

	// ErrInvalidOption is returned by Open for unusable Options.
	ErrInvalidOption = errors.New("productcache: invalid option")
)
