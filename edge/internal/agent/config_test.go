package agent

import (
	"strings"
	"testing"
)

func TestConfig_Validate(t *testing.T) {
	ok := Defaults()
	ok.Store, ok.Device = "S1", "pos-1"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	open := ok
	open.HTTP, open.APITokenFile = ":7070", "/etc/omnisync/api-token"
	if err := open.Validate(); err != nil {
		t.Fatalf("all interfaces with a token file rejected: %v", err)
	}
	leaf := ok
	leaf.NATSURL, leaf.NATSJSDomain = "nats://leaf.store.lan:4222", "hub"
	if err := leaf.Validate(); err != nil {
		t.Fatalf("an agent behind its store's leaf node rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no store", func(c *Config) { c.Store = "" }, "store"},
		{"dotted device", func(c *Config) { c.Device = "pos.1" }, "device"},
		{"bad nats url", func(c *Config) { c.NATSURL = "localhost" }, "nats-url"},
		{"bad http", func(c *Config) { c.HTTP = "7070" }, "http"},
		{"tiny budget", func(c *Config) { c.OutboxBudget = 10 }, "outbox-budget"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"dotted nearby store", func(c *Config) { c.Nearby = []string{"S2", "S.3"} }, "nearby"},
		{"bad online location", func(c *Config) { c.OnlineLocation = "on line" }, "online-location"},
		{"no stale-after", func(c *Config) { c.StaleAfter = 0 }, "stale-after"},
		{"all interfaces without a token", func(c *Config) { c.HTTP = ":7070" }, "api-token"},
		{"lan address without a token", func(c *Config) { c.HTTP = "192.168.1.5:7070" }, "beyond loopback"},
		{"short token", func(c *Config) { c.HTTP, c.APIToken = ":7070", "short" }, "api-token"},
		{"token and token file", func(c *Config) { c.APIToken, c.APITokenFile = "0123456789abcdef", "t" }, "api-token-file"},
		{"no scan stream clients", func(c *Config) { c.ScanStreamClients = 0 }, "scan-stream-clients"},
		{"dotted JetStream domain", func(c *Config) { c.NATSJSDomain = "hub.x" }, "nats-js-domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}
