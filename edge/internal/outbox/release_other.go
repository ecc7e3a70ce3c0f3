//go:build !linux

package outbox

// canRelease says releasePages does something on this platform. Elsewhere
// the agent leaves its mapped pages to the kernel's reclaim: Windows maps
// the file through its own API, and the BSDs' MADV_DONTNEED is only a hint.
const canRelease = false

func releasePages(uintptr, int64) error { return nil }
