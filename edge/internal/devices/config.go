package devices

import (
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Config is one device as the agent's config file lists it:
//
//	devices:
//	  - name: scanner-1
//	    port: /dev/serial/by-id/usb-Honeywell_1900-if00
//	    profile: generic-line-scanner
//	  - name: fitting-rooms
//	    port: /dev/ttyUSB0
//	    profile: uhf-a0-r2000
//	    zones:
//	      - {name: room-1, antennas: [1]}
//	      - {name: room-2, antennas: [2]}
type Config struct {
	// Name identifies the device in events, status and logs.
	Name string `mapstructure:"name"`
	// Port is the serial device: /dev/ttyACM0, /dev/serial/by-id/..., COM3.
	Port string `mapstructure:"port"`
	// Profile is the stem of a file under the profiles directory.
	Profile string `mapstructure:"profile"`
	// Zones map an RFID reader's antennas to fitting rooms (RFID only).
	Zones []ZoneConfig `mapstructure:"zones"`
}

// ZoneConfig is one fitting room (or mirror) covered by some antennas.
type ZoneConfig struct {
	Name     string `mapstructure:"name"`
	Antennas []int  `mapstructure:"antennas"`
	// EnterAfter, LeaveAfter and MinRSSI tune the smoother; zero keeps its
	// defaults (1s of reads to enter, 5s of silence to leave).
	EnterAfter time.Duration `mapstructure:"enter_after"`
	LeaveAfter time.Duration `mapstructure:"leave_after"`
	MinRSSI    float64       `mapstructure:"min_rssi"`
}

// ErrConfig wraps every device configuration problem.
var ErrConfig = errors.New("devices: invalid configuration")

// validate checks the list before anything opens: names unique and usable,
// ports and profiles given.
func validate(cfgs []Config) error {
	seen := map[string]bool{}
	var errs []error
	for i, c := range cfgs {
		where := fmt.Sprintf("devices[%d]", i)
		if c.Name != "" {
			where += " (" + c.Name + ")"
		}
		if err := events.ValidToken(c.Name); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s.name: %v", ErrConfig, where, err))
		} else if seen[c.Name] {
			errs = append(errs, fmt.Errorf("%w: %s.name: used twice", ErrConfig, where))
		}
		seen[c.Name] = true
		if c.Port == "" {
			errs = append(errs, fmt.Errorf("%w: %s.port: missing", ErrConfig, where))
		}
		if c.Profile == "" {
			errs = append(errs, fmt.Errorf("%w: %s.profile: missing", ErrConfig, where))
		}
		for j, z := range c.Zones {
			if z.Name == "" || len(z.Antennas) == 0 {
				errs = append(errs, fmt.Errorf("%w: %s.zones[%d]: needs a name and antennas", ErrConfig, where, j))
			}
		}
	}
	return errors.Join(errs...)
}
