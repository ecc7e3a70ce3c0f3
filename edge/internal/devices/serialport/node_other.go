//go:build !unix

package serialport

// nodeID is empty where device nodes cannot be compared (Windows COM ports).
type nodeID struct{}

// resolvePath returns path unchanged: COM3 and \\.\COM10 are not files to follow.
func resolvePath(path string) (string, error) { return path, nil }

// statNode cannot identify a COM port; ok is false so the node checks are skipped
// and a lost device is noticed by failing reads and opens alone.
func statNode(string) (id nodeID, ok bool, err error) { return nodeID{}, false, nil }

// isUnusable: Windows reports no errno that reliably means "never a serial port".
func isUnusable(error) bool { return false }
