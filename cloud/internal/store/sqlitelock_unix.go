//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked is returned by Open when another process already serves the
// SQLite database: one hub per SQLite file (several hubs share PostgreSQL).
var ErrLocked = errors.New("store: the SQLite database is in use by another hub")

// lockSQLite takes an exclusive lock on path+".lock" for as long as the
// store is open, so that this process is the database's one writer (which
// the store's cache of positions relies on). The lock goes with the
// process, however it ends.
func lockSQLite(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s.lock)", ErrLocked, path)
		}
		return nil, fmt.Errorf("store: sqlite lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
