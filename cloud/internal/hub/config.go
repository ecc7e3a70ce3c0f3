package hub

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/cloud/internal/egress"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/natsauth"
	"github.com/omnisync/omnisync/shared/redact"
)

// Config is the hub's configuration; every field is a flag, an OMNI_
// environment variable and a config-file key of the same name.
type Config struct {
	// Config names a YAML/JSON/TOML config file.
	Config string `mapstructure:"config"`
	// DataDir holds the embedded NATS server's JetStream data and the SQLite
	// database.
	DataDir string `mapstructure:"data-dir"`
	// NATSURL connects to an external NATS server; empty starts an embedded one.
	NATSURL string `mapstructure:"nats-url"`
	// NATSCreds is a credentials file for the external server.
	NATSCreds string `mapstructure:"nats-creds"`
	// NATSCA is a PEM file of the CA that signed the NATS server's
	// certificate (TLS); NATSCert and NATSKey a client certificate when the
	// server verifies clients (mutual TLS).
	NATSCA   string `mapstructure:"nats-ca"`
	NATSCert string `mapstructure:"nats-cert"`
	NATSKey  string `mapstructure:"nats-key"`
	// NATSListen is where the embedded server listens (port 0 picks one).
	// Wherever it listens, loopback too, it admits only the hub (credentials
	// made on first start) and stores minted by omni-nats mint-store.
	NATSListen string `mapstructure:"nats-listen"`
	// DB is "postgres://..." for PostgreSQL; empty means SQLite in DataDir.
	DB string `mapstructure:"db"`
	// HTTP is the API/dashboard/metrics listen address: loopback by
	// default; an address others can reach needs PublicURL.
	HTTP string `mapstructure:"http"`
	// TLSCert and TLSKey (PEM files) make the hub serve HTTPS itself.
	// Behind a TLS-terminating proxy, leave them empty and set PublicURL
	// to the https:// address users reach; X-Forwarded-* headers are
	// never trusted.
	TLSCert string `mapstructure:"tls-cert"`
	TLSKey  string `mapstructure:"tls-key"`
	// BootstrapToken, on a hub without users (a fresh data dir or
	// database), becomes the admin's API token; ignored with a warning
	// once users exist.
	BootstrapToken string `mapstructure:"bootstrap-token"`
	// StreamReplicas: 3 on a NATS cluster.
	StreamReplicas int `mapstructure:"stream-replicas"`
	// StreamMaxAge keeps applied events in the stream for audits.
	StreamMaxAge time.Duration `mapstructure:"stream-max-age"`
	// LedgerRetention is how long the stock ledger keeps raw lines: older
	// ones are rolled up into daily totals per position and kind (kept
	// for analytics) and deleted, in small transactions, every hour. 0
	// keeps every line forever. A count stamped before the retention
	// horizon is dead-lettered (the lines it would supersede are gone).
	LedgerRetention time.Duration `mapstructure:"ledger-retention"`
	// Batch is the most events applied per database transaction. Under a
	// backlog (a store catching up) bigger batches amortise each
	// transaction's statements and commit, and a store's many lines per
	// SKU become one stock write per position. End to end on 2 cores
	// (BenchmarkEdgeToHub, one agent, 200k events, batch messages):
	// SQLite 33.5k events/s at 5,000, 42k at 10,000, 48k at 20,000, 50k at
	// 40,000; PostgreSQL 44k at 5,000, 62k at 20,000, 60k at 40,000. A
	// quiet hub applies whatever arrived while it committed the previous
	// batch, so latency is not affected; memory is about 1 KiB per event
	// of the batch.
	Batch int `mapstructure:"batch"`
	// LogLevel: debug, info, warn, error.
	LogLevel string `mapstructure:"log-level"`
	// OnlineLocation is the location of the online warehouse, whose stock
	// every store's shoppers see.
	OnlineLocation string `mapstructure:"online-location"`
	// OnlineMinConfidence: online stock whose confidence is below it
	// (high, medium_high, medium, low; see inventory.ConfidenceOf) is not
	// promised to the web shop: GET /v1/products shows none available
	// online. Default low: every unit is promised.
	OnlineMinConfidence string `mapstructure:"online-min-confidence"`
	// UnsyncedSaleAlert is the age of a device's oldest unconfirmed sale
	// (money HQ cannot see yet) at which /v1/stores and the console flag
	// it; the hub exports it (omni_hub_unsynced_sale_alert_seconds) so the
	// OmniUnsyncedSalesAging alert warns before a device passes it.
	UnsyncedSaleAlert time.Duration `mapstructure:"unsynced-sale-alert"`
	// CatalogMaxBytes bounds a catalog import's upload; a larger one is
	// refused (413) and nothing is stored. An upload waits on disk in
	// DataDir/imports until it is stored, so DataDir needs that much
	// free space.
	CatalogMaxBytes int64 `mapstructure:"catalog-max-bytes"`
	// PublicURL is the hub's address as people and shoppers' phones reach
	// it (the host printed in shelf-tag Digital Link URIs, where logins
	// redirect to); an https:// one makes session cookies Secure. Empty:
	// the loopback address the hub listens on. Never taken from a
	// request's Host.
	PublicURL string `mapstructure:"public-url"`
	// CartMergePolicy is how a customer's carts are seen as one when she
	// claims an anonymous cart while she has one: "union" (every SKU at
	// the largest quantity) or "newest" (the cart changed last wins).
	CartMergePolicy string `mapstructure:"cart-merge-policy"`
	// CartReserve are the reservation modes per channel,
	// "web=cart:30m,app=order": none, cart:TTL (held from the first edit
	// until TTL after the last) or order (held once ordered).
	CartReserve string `mapstructure:"cart-reserve"`
	// CartAbandonAfter: an open cart of a known customer with no edit for
	// this long is abandoned (0: never).
	CartAbandonAfter time.Duration `mapstructure:"cart-abandon-after"`
	// TransferOverdue: a transfer in transit longer than this is listed
	// as overdue.
	TransferOverdue time.Duration `mapstructure:"transfer-overdue"`
	// CustomerKeys is the file of the keys customers' personal data is
	// indexed and sealed with (package pii), kept outside the database;
	// created on first start with mode 0600. Empty: customer-keys.json in
	// DataDir. Every replica needs the same file.
	CustomerKeys string `mapstructure:"customer-keys"`
	// WebhookHosts are the hosts automation webhooks may be sent to,
	// comma separated: "crm.example.com" exactly, "*.example.com" any
	// name under it, or an IP address (package egress). A rule naming
	// another is refused when saved and when sent. Empty: no webhooks.
	WebhookHosts string `mapstructure:"webhook-hosts"`
	// WebhookAllowLoopback lets webhooks reach loopback addresses
	// (127.0.0.1, ::1), refused otherwise like every private address:
	// for tests and a hub run on one machine, never in production.
	WebhookAllowLoopback bool `mapstructure:"webhook-allow-loopback"`
}

// Webhooks is the egress policy of the automation's webhooks.
func (c *Config) Webhooks() egress.Policy {
	hosts, _ := egress.ParseHosts(c.WebhookHosts) // Validate refused a bad list
	return egress.Policy{Hosts: hosts, AllowLoopback: c.WebhookAllowLoopback}
}

// Defaults returns the configuration `omni-hub` runs with when given nothing.
func Defaults() Config {
	return Config{
		DataDir:             "omni-data/hub",
		NATSListen:          "127.0.0.1:4222",
		HTTP:                "127.0.0.1:8080",
		StreamReplicas:      1,
		StreamMaxAge:        7 * 24 * time.Hour,
		LedgerRetention:     400 * 24 * time.Hour,
		Batch:               20000,
		LogLevel:            "info",
		OnlineLocation:      "online",
		OnlineMinConfidence: "low",
		UnsyncedSaleAlert:   30 * time.Minute,

		CartMergePolicy:  "union",
		CartReserve:      "web=order",
		CartAbandonAfter: 24 * time.Hour,
		TransferOverdue:  72 * time.Hour,

		CatalogMaxBytes: 1 << 30,
	}
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: must be set"))
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("nats-listen: %q is not host:port", c.NATSListen))
		}
	} else if !strings.Contains(c.NATSURL, "://") {
		errs = append(errs, fmt.Errorf("nats-url: %q must look like nats://host:port", redact.URL(c.NATSURL)))
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") && !strings.HasPrefix(c.DB, "sqlite:") {
		errs = append(errs, fmt.Errorf("db: %q must be postgres://... or sqlite:PATH", redact.URL(c.DB)))
	}
	if host, _, err := net.SplitHostPort(c.HTTP); err != nil {
		errs = append(errs, fmt.Errorf("http: %q is not host:port", c.HTTP))
	} else if !loopback(host) && c.PublicURL == "" {
		errs = append(errs, fmt.Errorf("http: %q is reachable from other machines: set public-url to the address users reach (https://...)", c.HTTP))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("public-url: %q must look like https://host[:port][/path]", c.PublicURL))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert, tls-key: give both or neither"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("stream-replicas: %d must be 1 to 5", c.StreamReplicas))
	}
	if err := events.ValidToken(c.OnlineLocation); err != nil {
		errs = append(errs, fmt.Errorf("online-location: %w", err))
	}
	if c.UnsyncedSaleAlert <= 0 {
		errs = append(errs, errors.New("unsynced-sale-alert: must be positive"))
	}
	if _, err := inventory.ParseConfidence(c.OnlineMinConfidence); err != nil {
		errs = append(errs, fmt.Errorf("online-min-confidence: %w", err))
	}
	if _, err := carts.ParsePolicy(c.CartMergePolicy); err != nil {
		errs = append(errs, fmt.Errorf("cart-merge-policy: %w", err))
	}
	if _, err := cartsvc.ParseModes(c.CartReserve); err != nil {
		errs = append(errs, fmt.Errorf("cart-reserve: %w", err))
	}
	if _, err := egress.ParseHosts(c.WebhookHosts); err != nil {
		errs = append(errs, fmt.Errorf("webhook-hosts: %w", err))
	}
	if c.CartAbandonAfter < 0 {
		errs = append(errs, errors.New("cart-abandon-after: must not be negative"))
	}
	if c.TransferOverdue < 0 {
		errs = append(errs, errors.New("transfer-overdue: must not be negative"))
	}
	if c.CatalogMaxBytes < 1 {
		errs = append(errs, fmt.Errorf("catalog-max-bytes: %d must be positive", c.CatalogMaxBytes))
	}
	if c.Batch < 1 || c.Batch > 50000 {
		errs = append(errs, fmt.Errorf("batch: %d must be 1 to 50000", c.Batch))
	}
	return errors.Join(errs...)
}

func (c *Config) natsAuth() natsauth.Settings {
	return natsauth.Settings{Creds: c.NATSCreds, CA: c.NATSCA, Cert: c.NATSCert, Key: c.NATSKey}
}

// loopback reports whether host (of a listen address) is reachable from
// this machine only. An empty host listens on every interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
