package serialport

import (
	"errors"
	"testing"
	"time"
)

// Ensure that New rejects settings no serial port can have, naming the field.
func TestNew_RejectsBadConfig(t *testing.T) {
	ok := Config{Name: "scanner-1", Path: "/dev/ttyACM0", Baud: 9600}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"baud 0", func(c *Config) { c.Baud = 0 }},
		{"negative baud", func(c *Config) { c.Baud = -9600 }},
		{"missing path", func(c *Config) { c.Path = "" }},
		{"data bits 9", func(c *Config) { c.DataBits = 9 }},
		{"data bits 4", func(c *Config) { c.DataBits = 4 }},
		{"parity X", func(c *Config) { c.Parity = 'X' }},
		{"parity mark", func(c *Config) { c.Parity = 'M' }},
		{"stop bits 3", func(c *Config) { c.StopBits = 3 }},
		{"read timeout below VTIME unit", func(c *Config) { c.ReadTimeout = 50 * time.Millisecond }},
		{"read timeout above close bound", func(c *Config) { c.ReadTimeout = 2 * time.Second }},
		{"negative read timeout", func(c *Config) { c.ReadTimeout = -time.Second }},
		{"stall shorter than a read", func(c *Config) { c.ReadTimeout = 500 * time.Millisecond; c.StallAfter = 200 * time.Millisecond }},
		{"negative stall", func(c *Config) { c.StallAfter = -time.Second }},
		{"backoff min above max", func(c *Config) { c.BackoffMin = time.Second; c.BackoffMax = time.Millisecond }},
		{"negative backoff", func(c *Config) { c.BackoffMin = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			p, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, %v; want ErrInvalidConfig", cfg, p, err)
			}
		})
	}
}

// Ensure that a minimal config gets the documented defaults and a closed status.
func TestNew_Defaults(t *testing.T) {
	p, err := New(Config{Path: "/dev/ttyACM0", Baud: 115200, ReadTimeout: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := p.cfg
	if c.Name != "/dev/ttyACM0" || c.DataBits != 8 || c.Parity != 'N' || c.StopBits != 1 ||
		c.StallAfter != DefaultStallAfter || c.BackoffMin != DefaultBackoffMin || c.BackoffMax != DefaultBackoffMax ||
		c.Logger == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.ReadTimeout != 200*time.Millisecond {
		t.Errorf("ReadTimeout = %v, want 200ms (rounded down to VTIME's 100ms)", c.ReadTimeout)
	}
	if st := p.Status(); st.State != StateClosed || st.Name != "/dev/ttyACM0" || st.Path != "/dev/ttyACM0" {
		t.Errorf("Status() = %+v, want closed with name and path", st)
	}
}
