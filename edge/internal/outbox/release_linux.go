//go:build linux

package outbox

import "golang.org/x/sys/unix"

// canRelease says releasePages does something on this platform.
const canRelease = true

// releasePages drops the page-table entries of n bytes of a file mapping
// at addr (page-aligned) with madvise(MADV_DONTNEED); see releaseMapped for
// why that is safe on bbolt's mapping. MADV_DONTNEED rather than MADV_COLD
// or MADV_PAGEOUT: COLD only ages the pages, they stay resident until memory
// is short; PAGEOUT would also evict them from the page cache, so the pages
// still in use (meta, branches) would come back with a disk read.
//
// The raw syscall takes the address as a uintptr, which spares building a
// []byte over memory the Go runtime does not own.
func releasePages(addr uintptr, n int64) error {
	if n <= 0 {
		return nil
	}
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(n), unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
