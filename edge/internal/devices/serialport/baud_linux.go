package serialport

// supportedBaud reports whether tarm/serial's Linux driver has a termios speed
// constant for b; any other rate fails at open with an error retrying cannot fix,
// so New rejects it instead.
func supportedBaud(b int) bool {
	switch b {
	case 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
		19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600,
		1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000:
		return true
	}
	return false
}
