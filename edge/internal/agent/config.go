package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/edge/internal/apiguard"
	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/natsauth"
	"github.com/omnisync/omnisync/shared/redact"
)

// Config is the agent's configuration; every field is a flag, an OMNI_
// environment variable and a config-file key of the same name.
type Config struct {
	Config string `mapstructure:"config"`
	// Store and Device identify this agent; they become NATS subject tokens.
	Store  string `mapstructure:"store"`
	Device string `mapstructure:"device"`
	// NATSURL is the hub's NATS (or a leaf node in the store).
	NATSURL   string `mapstructure:"nats-url"`
	NATSCreds string `mapstructure:"nats-creds"`
	// NATSJSDomain is the hub's JetStream domain ("hub" in deploy/nats)
	// when NATSURL is the store's leaf node: the leaf's own JetStream
	// answers the plain JetStream API, so the down-sync and pickup buckets
	// are read as the hub's domain. Events, acknowledgements and
	// heartbeats need nothing: they are plain subjects the leaf carries to
	// the hub. Leave it empty when NATSURL is the hub's NATS itself.
	NATSJSDomain string `mapstructure:"nats-js-domain"`
	// NATSCA is a PEM file of the CA that signed the NATS server's
	// certificate (TLS); NATSCert and NATSKey a client certificate when the
	// server verifies clients (mutual TLS).
	NATSCA   string `mapstructure:"nats-ca"`
	NATSCert string `mapstructure:"nats-cert"`
	NATSKey  string `mapstructure:"nats-key"`
	// DataDir holds the outbox (outbox.db), the product cache (cache.db),
	// the store's pickup orders (pickups.db) and the customer cards and
	// erasures (customers.db); the caches may be deleted: they are fetched
	// again from the hub (customers.db's erasures too, from the notices).
	DataDir string `mapstructure:"data-dir"`
	// HTTP is the local API address; keep it on loopback unless the POS app
	// runs on another machine. Beyond loopback the agent requires an API
	// token (APIToken or APITokenFile) and will not start without one.
	HTTP string `mapstructure:"http"`
	// APIToken, when set, is required of every API client as
	// "Authorization: Bearer <token>" (at least 16 characters); a kiosk on
	// another device pairs once by opening /kiosk/?pair=<token>.
	// APITokenFile names a file whose first line is the token, which keeps
	// it out of the process list and the environment.
	APIToken     string `mapstructure:"api-token"`
	APITokenFile string `mapstructure:"api-token-file"`
	// APIAllowedHosts are host names, besides localhost, IP addresses and
	// the machine's name, that requests may name in their Host header
	// (any other is refused: DNS-rebinding pages).
	APIAllowedHosts []string `mapstructure:"api-allowed-hosts"`
	// APIAllowedOrigins are origins (https://pos.example.com) whose web
	// pages may post to the agent from a browser.
	APIAllowedOrigins []string `mapstructure:"api-allowed-origins"`
	// HubURL is the hub's public URL (https://hq.example.com): a kiosk
	// cart's QR code opens the shopper's cart page there. Empty: the QR
	// carries the cart id alone.
	HubURL string `mapstructure:"hub-url"`
	// ScanStreamClients caps the clients of GET /v1/scans/stream.
	ScanStreamClients int `mapstructure:"scan-stream-clients"`
	// OutboxBudget bounds the bytes of unsynced events (sales are refused
	// with 507 only when it is exhausted, never dropped).
	OutboxBudget int64 `mapstructure:"outbox-budget"`
	// MinFreeDisk refuses new events when the disk has less free space.
	MinFreeDisk int64 `mapstructure:"min-free-disk"`
	// HeartbeatEvery is how often the agent reports to the hub.
	HeartbeatEvery time.Duration `mapstructure:"heartbeat-every"`
	// UplinkBatch is the most events sent in one JetStream message (1
	// sends each event alone).
	UplinkBatch int `mapstructure:"uplink-batch"`
	// Simulate runs a simulated POS posting to this agent (for demos).
	Simulate bool `mapstructure:"simulate"`
	// SimulateRate is the simulated POS's events per second.
	SimulateRate float64 `mapstructure:"simulate-rate"`
	// SimulateSKUs is how many SKUs the simulated store sells.
	SimulateSKUs int `mapstructure:"simulate-skus"`
	// SimulateCatalog is a catalog file (JSON Lines or CSV) whose SKUs the
	// simulated store sells, so its stock shows at the kiosk.
	SimulateCatalog string `mapstructure:"simulate-catalog"`
	// SimulateFittingRooms, when above 0, plays shoppers carrying tagged
	// items (of SimulateCatalog) in and out of that many fitting rooms
	// (1–4), through a simulated R2000 reader on a pty (package rfidsim):
	// the mirrors at /kiosk/?zone=room-N fill and suggest, for demos.
	SimulateFittingRooms int    `mapstructure:"simulate-fitting-rooms"`
	LogLevel             string `mapstructure:"log-level"`
	// Profiles is the directory of device profiles (firmware-configs/).
	Profiles string `mapstructure:"profiles"`
	// Nearby lists the stores whose stock shoppers are shown as "nearby"
	// (store ids; comma-separated as a flag or environment variable, a
	// list in the config file). The agent keeps their stock in its cache.
	Nearby []string `mapstructure:"nearby"`
	// OnlineLocation is the location id of the online warehouse, whose
	// stock shoppers see as "online" ("" for none).
	OnlineLocation string `mapstructure:"online-location"`
	// StaleAfter: product lookups say their stock may be stale when the
	// cache last caught up with the hub longer ago than this.
	StaleAfter time.Duration `mapstructure:"stale-after"`
	// CustomerCardTTL is how long a customer card fetched from the hub is
	// kept in customers.db and may be shown while the store is offline.
	CustomerCardTTL time.Duration `mapstructure:"customer-card-ttl"`
	// CustomerCardTimeout bounds a card request to the hub; past it the
	// till gets the cached card (or 503).
	CustomerCardTimeout time.Duration `mapstructure:"customer-card-timeout"`
	// ClockOffset shifts the agent's wall clock by this much: a rehearsal
	// of a till whose clock is wrong (chaos tests). Leave it 0.
	ClockOffset time.Duration `mapstructure:"clock-offset"`
	// Devices lists the store's scanners and RFID readers (config file only).
	Devices []devices.Config `mapstructure:"devices"`
}

// Defaults returns the configuration omni-edge runs with when given nothing.
func Defaults() Config {
	return Config{
		NATSURL:             "nats://127.0.0.1:4222",
		DataDir:             "omni-data/edge",
		HTTP:                "127.0.0.1:7070",
		ScanStreamClients:   32,
		OutboxBudget:        1 << 30,
		MinFreeDisk:         64 << 20,
		HeartbeatEvery:      5 * time.Second,
		UplinkBatch:         128,
		SimulateRate:        5,
		SimulateSKUs:        200,
		LogLevel:            "info",
		Profiles:            "firmware-configs",
		OnlineLocation:      "online",
		StaleAfter:          30 * time.Second,
		CustomerCardTTL:     15 * time.Minute,
		CustomerCardTimeout: time.Second,
	}
}

// Validate reports every problem with c.
func (c *Config) Validate() error {
	var errs []error
	if err := events.ValidToken(c.Store); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if err := events.ValidToken(c.Device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	if !strings.Contains(c.NATSURL, "://") {
		errs = append(errs, fmt.Errorf("nats-url: %q must look like nats://host:port", redact.URL(c.NATSURL)))
	}
	if c.NATSJSDomain != "" {
		if err := events.ValidToken(c.NATSJSDomain); err != nil {
			errs = append(errs, fmt.Errorf("nats-js-domain: %w", err))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: must be set"))
	}
	if loopback, err := apiguard.IsLoopback(c.HTTP); err != nil {
		errs = append(errs, fmt.Errorf("http: %q is not host:port", c.HTTP))
	} else if !loopback && c.APIToken == "" && c.APITokenFile == "" {
		errs = append(errs, fmt.Errorf("http: %q listens beyond loopback: set --api-token-file (or --api-token, OMNI_API_TOKEN) so only your tills and kiosks can use the API", c.HTTP))
	}
	if c.APIToken != "" && c.APITokenFile != "" {
		errs = append(errs, errors.New("api-token and api-token-file: give one or the other"))
	}
	if c.APIToken != "" && len(c.APIToken) < apiguard.MinTokenLen {
		errs = append(errs, fmt.Errorf("api-token: at least %d characters", apiguard.MinTokenLen))
	}
	if c.ScanStreamClients < 1 {
		errs = append(errs, fmt.Errorf("scan-stream-clients: %d must be at least 1", c.ScanStreamClients))
	}
	if err := c.natsAuth().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.OutboxBudget < 1<<20 {
		errs = append(errs, fmt.Errorf("outbox-budget: %d bytes is below the 1 MiB minimum", c.OutboxBudget))
	}
	if c.UplinkBatch < 1 || c.UplinkBatch > events.MaxBatchEvents {
		errs = append(errs, fmt.Errorf("uplink-batch: %d is not between 1 and %d", c.UplinkBatch, events.MaxBatchEvents))
	}
	if c.HeartbeatEvery < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("heartbeat-every: %v is too short", c.HeartbeatEvery))
	}
	for _, n := range c.Nearby {
		if err := events.ValidToken(n); err != nil {
			errs = append(errs, fmt.Errorf("nearby: store %q: %w", n, err))
		}
	}
	if c.OnlineLocation != "" {
		if err := events.ValidToken(c.OnlineLocation); err != nil {
			errs = append(errs, fmt.Errorf("online-location: %w", err))
		}
	}
	if c.StaleAfter <= 0 {
		errs = append(errs, fmt.Errorf("stale-after: %v must be positive", c.StaleAfter))
	}
	if c.CustomerCardTTL <= 0 || c.CustomerCardTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("customer-card-ttl: %v must be positive and at most 24h (cards are personal data)", c.CustomerCardTTL))
	}
	if c.CustomerCardTimeout < 50*time.Millisecond || c.CustomerCardTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("customer-card-timeout: %v must be between 50ms and 1m", c.CustomerCardTimeout))
	}
	if c.SimulateFittingRooms < 0 || c.SimulateFittingRooms > 4 {
		errs = append(errs, fmt.Errorf("simulate-fitting-rooms: %d: 0 (off) to 4", c.SimulateFittingRooms))
	}
	if c.SimulateFittingRooms > 0 && c.SimulateCatalog == "" {
		errs = append(errs, errors.New("simulate-fitting-rooms needs simulate-catalog (the items carried in)"))
	}
	if c.Simulate && (c.SimulateRate <= 0 || c.SimulateSKUs < 1) {
		errs = append(errs, errors.New("simulate-rate and simulate-skus must be positive"))
	}
	return errors.Join(errs...)
}

func (c *Config) natsAuth() natsauth.Settings {
	return natsauth.Settings{Creds: c.NATSCreds, CA: c.NATSCA, Cert: c.NATSCert, Key: c.NATSKey}
}
