// Command omni-edge runs the omnisync store agent on a POS terminal, kiosk or
// store gateway: it accepts the POS app's events on a local HTTP API, keeps
// them durable in a bbolt outbox, and syncs them to the hub through NATS
// JetStream, online or not.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/edge/internal/agent"
	"github.com/omnisync/omnisync/shared/config"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	d := agent.Defaults()
	cmd := &cobra.Command{
		Use:           "omni-edge --store S --device D --nats-url URL",
		Short:         "omnisync store edge agent",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.String("config", "", "config file (YAML, JSON or TOML); env OMNI_CONFIG")
	fs.String("store", d.Store, "store id (letters, digits, '-', '_')")
	fs.String("device", d.Device, "device id within the store")
	fs.String("nats-url", d.NATSURL, "NATS server URL of the hub (or the store's leaf node)")
	fs.String("nats-creds", d.NATSCreds, "the store's NATS credentials file")
	fs.String("nats-js-domain", d.NATSJSDomain, "the hub's JetStream domain (hub) when --nats-url is the store's leaf node")
	fs.String("nats-ca", d.NATSCA, "PEM file of the CA that signed the NATS server's TLS certificate")
	fs.String("nats-cert", d.NATSCert, "client certificate (PEM) when the NATS server verifies clients")
	fs.String("nats-key", d.NATSKey, "the client certificate's key (PEM)")
	fs.String("data-dir", d.DataDir, "directory for the outbox and the product cache")
	fs.String("http", d.HTTP, "local HTTP API address (beyond loopback it requires --api-token-file or --api-token)")
	fs.String("api-token", d.APIToken, "token API clients send as Authorization: Bearer (16+ characters; env OMNI_API_TOKEN)")
	fs.String("api-token-file", d.APITokenFile, "file whose first line is the API token")
	fs.StringSlice("api-allowed-hosts", d.APIAllowedHosts, "host names requests may address besides localhost, IP addresses and this machine's name (comma-separated)")
	fs.String("hub-url", d.HubURL, "the hub's public URL: a kiosk cart's QR code opens the shopper's cart page there")
	fs.StringSlice("api-allowed-origins", d.APIAllowedOrigins, "origins of web POS apps allowed to post from a browser (https://pos.example.com, comma-separated)")
	fs.Int("scan-stream-clients", d.ScanStreamClients, "most clients of GET /v1/scans/stream at once (503 beyond)")
	fs.Int64("outbox-budget", d.OutboxBudget, "bytes of unsynced events the outbox may hold")
	fs.Int64("min-free-disk", d.MinFreeDisk, "refuse new events below this much free disk (bytes)")
	fs.Duration("heartbeat-every", d.HeartbeatEvery, "how often to report to the hub")
	fs.Int("uplink-batch", d.UplinkBatch, "most events sent to NATS in one message (1 = one event per message)")
	fs.Bool("simulate", d.Simulate, "run a simulated POS against this agent (demo)")
	fs.Float64("simulate-rate", d.SimulateRate, "simulated POS events per second")
	fs.Int("simulate-skus", d.SimulateSKUs, "how many SKUs the simulated store sells")
	fs.Duration("clock-offset", 0, "shift this agent's wall clock (rehearsing a till with a wrong clock; leave 0)")
	fs.String("simulate-catalog", d.SimulateCatalog, "catalog file (JSONL or CSV) whose SKUs the simulated store sells")
	fs.Int("simulate-fitting-rooms", d.SimulateFittingRooms, "play shoppers with tagged items in this many fitting rooms (1-4) through a simulated RFID reader on a pty (demo; needs --simulate-catalog)")
	fs.String("log-level", d.LogLevel, "debug, info, warn or error")
	fs.String("profiles", d.Profiles, "directory of device profiles (the devices themselves are listed in --config)")
	fs.StringSlice("nearby", d.Nearby, "stores whose stock shoppers see as nearby (comma-separated store ids)")
	fs.String("online-location", d.OnlineLocation, `location id of the online warehouse ("" for none)`)
	fs.Duration("stale-after", d.StaleAfter, "product lookups say stock may be stale when the cache last caught up longer ago than this")
	fs.Duration("customer-card-ttl", d.CustomerCardTTL, "how long a customer card from the hub is kept and may be shown offline (at most 24h)")
	fs.Duration("customer-card-timeout", d.CustomerCardTimeout, "how long the till waits for the hub's customer card before the cached one answers")
	config.Main(config.Program[agent.Config]{
		Cmd:      cmd,
		Defaults: agent.Defaults,
		LogLevel: func(c *agent.Config) string { return c.LogLevel },
		Run: func(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
			stop, err := startCPUProfile(os.Getenv(cpuProfileEnv), log)
			if err != nil {
				return err
			}
			defer stop()
			a, err := agent.New(cfg, log, version)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	})
}

// cpuProfileEnv names a file to write a CPU profile of the whole run to,
// for measuring the agent (the e2e benchmark sets it when asked). It is
// read from the environment only, never from a config file or an API:
// whoever starts the process decides, and the profile is written when the
// agent stops on SIGINT or SIGTERM (a SIGKILL loses it).
const cpuProfileEnv = "OMNI_EDGE_CPUPROFILE"

// startCPUProfile starts profiling into path (nothing when path is empty)
// and returns what stops it and closes the file.
func startCPUProfile(path string, log *slog.Logger) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	log.Info("writing a CPU profile until exit", "env", cpuProfileEnv)
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("cpu profile not written", "err", err)
		}
	}, nil
}
