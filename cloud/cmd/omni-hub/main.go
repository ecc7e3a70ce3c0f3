// Command omni-hub runs the omnisync cloud hub: it consumes store events from
// NATS JetStream, reconciles inventory into its SQL store, and serves the HQ
// API and dashboard. With no --nats-url it embeds a NATS server; with no --db
// it keeps its books in SQLite in --data-dir.
package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/config"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	d := hub.Defaults()
	cmd := &cobra.Command{
		Use:           "omni-hub",
		Short:         "omnisync cloud hub",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.String("config", "", "config file (YAML, JSON or TOML); env OMNI_CONFIG")
	fs.String("data-dir", d.DataDir, "directory for the embedded NATS server's data and the SQLite database")
	fs.String("nats-url", d.NATSURL, "external NATS server URL; empty starts an embedded server")
	fs.String("nats-creds", d.NATSCreds, "credentials file for the external NATS server")
	fs.String("nats-ca", d.NATSCA, "PEM file of the CA that signed the NATS server's TLS certificate")
	fs.String("nats-cert", d.NATSCert, "client certificate (PEM) when the NATS server verifies clients")
	fs.String("nats-key", d.NATSKey, "the client certificate's key (PEM)")
	fs.String("nats-listen", d.NATSListen, "embedded NATS listen address host:port (port 0 picks a free one)")
	fs.String("db", d.DB, "database: postgres://... ; empty uses SQLite in --data-dir")
	fs.String("http", d.HTTP, "HTTP listen address for the API, dashboard and /metrics (a non-loopback one needs --public-url)")
	fs.String("tls-cert", d.TLSCert, "PEM certificate: serve HTTPS (with --tls-key)")
	fs.String("tls-key", d.TLSKey, "PEM key of --tls-cert")
	fs.String("bootstrap-token", d.BootstrapToken, "on a hub without users, make this the admin's API token, for automation (env OMNI_BOOTSTRAP_TOKEN; ignored once users exist); without it, the first start prints a one-time setup token for the admin's password")
	fs.Int("stream-replicas", d.StreamReplicas, "JetStream replicas for the events stream (3 on a cluster)")
	fs.Duration("stream-max-age", d.StreamMaxAge, "how long applied events stay in the stream")
	fs.Duration("ledger-retention", d.LedgerRetention, "how long the stock ledger keeps raw lines before rolling them up into daily totals (0: forever)")
	fs.Int("batch", d.Batch, "most events applied per database transaction")
	fs.String("log-level", d.LogLevel, "debug, info, warn or error")
	fs.String("online-location", d.OnlineLocation, "location of the online warehouse, whose stock every store shows")
	fs.Duration("unsynced-sale-alert", d.UnsyncedSaleAlert, "flag a device whose oldest sale not yet confirmed by the hub is older than this (console, /v1/stores; the Prometheus alert warns before)")
	fs.String("online-min-confidence", d.OnlineMinConfidence, "promise online stock only at this confidence or above: high, medium_high, medium or low (everything)")
	fs.String("cart-merge-policy", d.CartMergePolicy, "how a customer's carts are seen as one when she claims an anonymous cart: union or newest")
	fs.String("cart-reserve", d.CartReserve, "reservation modes of carts per channel: channel=none|cart:TTL|order, comma separated")
	fs.Duration("cart-abandon-after", d.CartAbandonAfter, "an open cart of a known customer with no edit for this long is abandoned (0: never)")
	fs.Duration("transfer-overdue", d.TransferOverdue, "a transfer in transit longer than this is listed as overdue")
	fs.Int64("catalog-max-bytes", d.CatalogMaxBytes, "largest catalog import upload in bytes (waits on disk in --data-dir/imports until stored)")
	fs.String("public-url", d.PublicURL, "the hub's public base URL (https://...): Digital Link URIs, product pages, login redirects; required on a non-loopback --http (default: the loopback address it listens on)")
	fs.String("webhook-hosts", d.WebhookHosts, "hosts automation webhooks may be sent to, comma separated: crm.example.com, *.example.com or an IP address (empty: no webhooks); private, loopback and link-local addresses are refused whatever the name")
	fs.Bool("webhook-allow-loopback", d.WebhookAllowLoopback, "let webhooks reach loopback addresses (tests and a hub run on one machine only)")
	fs.String("customer-keys", d.CustomerKeys, "file of the keys customers' personal data is indexed and sealed with, outside the database (default: --data-dir/customer-keys.json, created 0600 on first start)")
	config.Main(config.Program[hub.Config]{
		Cmd:      cmd,
		Defaults: hub.Defaults,
		LogLevel: func(c *hub.Config) string { return c.LogLevel },
		Run: func(ctx context.Context, cfg hub.Config, log *slog.Logger) error {
			h, err := hub.New(cfg, log, version)
			if err != nil {
				return err
			}
			return h.Run(ctx)
		},
	})
}
