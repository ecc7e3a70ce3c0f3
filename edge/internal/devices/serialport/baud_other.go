//go:build !linux

package serialport

// supportedBaud accepts any positive rate: on Windows the driver decides (and a
// rejected rate makes the port StateFailed at open).
func supportedBaud(b int) bool { return b > 0 }
