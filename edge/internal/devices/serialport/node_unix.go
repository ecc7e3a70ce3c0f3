//go:build unix

package serialport

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// nodeID identifies a device node: a re-plugged device gets a new node (new inode,
// often a new rdev), and a by-id symlink that moved points at a different one.
type nodeID struct {
	dev, ino, rdev uint64
}

// resolvePath follows the symlinks in path (a /dev/serial/by-id link) to the node
// that will be opened.
func resolvePath(path string) (string, error) {
	return filepath.EvalSymlinks(path)
}

// statNode returns the identity of the node path names, following symlinks.
// ok is false when the platform cannot tell nodes apart.
func statNode(path string) (id nodeID, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nodeID{}, true, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	// The conversions are needed: the field types differ between unix platforms.
	return nodeID{dev: uint64(st.Dev), ino: uint64(st.Ino), rdev: uint64(st.Rdev)}, true, nil
}

// isUnusable reports whether an open error is one retrying cannot fix: the path
// is not a terminal at all.
func isUnusable(err error) bool {
	return errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EISDIR)
}
