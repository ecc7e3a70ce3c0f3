package serialport

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults and limits for Config.
const (
	DefaultReadTimeout = 200 * time.Millisecond
	DefaultStallAfter  = 5 * time.Second
	DefaultBackoffMin  = 250 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second

	// vtimeUnit is the granularity of a tty's VTIME (deciseconds); tarm rounds
	// ReadTimeout down to it on unix.
	vtimeUnit = 100 * time.Millisecond
	// MaxReadTimeout caps ReadTimeout because a read in progress cannot be
	// interrupted (see the package doc), so ReadTimeout is what bounds Close.
	MaxReadTimeout = time.Second
)

// Config describes one serial device from the agent config. The zero value of every
// field but Path and Baud means "use the default".
type Config struct {
	// Name is the device name from the agent config (scanner-1); it labels logs and
	// Status. Defaults to Path.
	Name string
	// Path is the device: /dev/ttyACM0, /dev/serial/by-id/usb-Honeywell_1900-if00,
	// COM3. Symlinks are resolved again at every (re)open, so a by-id path follows
	// the device to its new ttyACMn after a re-plug.
	Path string
	// Baud is the line speed. Required; on Linux it must be one of the standard
	// rates tarm/serial knows (9600, 115200, ...).
	Baud int
	// DataBits is 5..8; default 8.
	DataBits int
	// Parity is 'N', 'E' or 'O'; default 'N'.
	Parity byte
	// StopBits is 1 or 2; default 1.
	StopBits int
	// ReadTimeout is how long one read waits for a byte before returning empty
	// (VTIME). It is rounded down to 100ms and must be within 100ms..1s; it bounds
	// how long Close and a context cancellation take. Default 200ms.
	ReadTimeout time.Duration
	// StallAfter: when the port has delivered nothing for this long, the configured
	// path is checked against the open node, and again every StallAfter while the
	// silence lasts. A vanished or replaced node means the device was unplugged and
	// the port is reopened; a silent device whose node is unchanged stays open
	// (an idle scanner is normal). Must be >= ReadTimeout; default 5s.
	StallAfter time.Duration
	// BackoffMin and BackoffMax bound the wait before each reopen attempt
	// (retry.Backoff): the step doubles from BackoffMin up to BackoffMax, and each
	// wait is drawn at random from the upper half of its step (so it is never
	// longer than BackoffMax nor shorter than half of BackoffMin), so a store's
	// readers unplugged by one power blip don't retry in lockstep. A stream that
	// worked (delivered bytes or stayed open StallAfter) restarts it from
	// BackoffMin; a device that fails right after every open keeps backing off.
	// Defaults 250ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Logger receives the port's logs, with the device name and path attached.
	// Default: discard.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = c.Path
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == 0 {
		c.Parity = 'N'
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.StallAfter == 0 {
		c.StallAfter = DefaultStallAfter
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports whether c, with defaults applied, can describe a serial port. The
// error wraps ErrInvalidConfig and names the device and the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: device %q: %s: %s", ErrInvalidConfig, c.Name, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Path == "":
		return bad("path", "missing")
	case c.Baud <= 0:
		return bad("baud", "%d must be positive", c.Baud)
	case !supportedBaud(c.Baud):
		return bad("baud", "%d is not a rate this platform's serial driver supports", c.Baud)
	case c.DataBits < 5 || c.DataBits > 8:
		return bad("data bits", "%d is not 5..8", c.DataBits)
	case c.Parity != 'N' && c.Parity != 'E' && c.Parity != 'O':
		return bad("parity", "%q is not 'N', 'E' or 'O'", c.Parity)
	case c.StopBits != 1 && c.StopBits != 2:
		return bad("stop bits", "%d is not 1 or 2", c.StopBits)
	case c.ReadTimeout < vtimeUnit || c.ReadTimeout > MaxReadTimeout:
		return bad("read timeout", "%v is not within %v..%v", c.ReadTimeout, vtimeUnit, MaxReadTimeout)
	case c.StallAfter < c.ReadTimeout:
		return bad("stall after", "%v is shorter than the read timeout %v", c.StallAfter, c.ReadTimeout)
	case c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin:
		return bad("backoff", "%v..%v is not a range of positive durations", c.BackoffMin, c.BackoffMax)
	}
	return nil
}
