package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/natsauth"
	"github.com/omnisync/omnisync/shared/natsembed"
)

// NATSAuthDir is where, in the data directory, the embedded NATS server
// keeps its accounts: accounts.conf (rewritten at every start),
// stores.conf (one block per store, appended by omni-nats mint-store) and
// hub.nk (the hub's own credentials, made on first start).
const NATSAuthDir = "nats-auth"

// startEmbeddedNATS starts the hub's own NATS server. It always requires
// credentials, on loopback too: the hub uses hub.nk, and each store the
// credentials omni-nats mint-store made for it (make run mints its stores
// before it starts their agents). A store minted while the hub runs is
// admitted within seconds. It returns the server and the hub's connect
// options.
func (h *Hub) startEmbeddedNATS() (*natsembed.Server, []nats.Option, error) {
	dir := filepath.Join(h.cfg.DataDir, NATSAuthDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("hub: %w", err)
	}
	seedFile := filepath.Join(dir, "hub.nk")
	if _, err := os.Stat(seedFile); errors.Is(err, os.ErrNotExist) {
		seed, _, err := natsacct.NewUserKey()
		if err != nil {
			return nil, nil, err
		}
		if err := natsacct.WriteSeed(seedFile, "the hub", seed); err != nil {
			return nil, nil, err
		}
		clear(seed)
		h.log.Info("NATS credentials made for the hub", "file", seedFile)
	}
	pub, err := natsacct.PublicKey(seedFile)
	if err != nil {
		return nil, nil, err
	}
	stores := filepath.Join(dir, natsacct.StoresFile)
	if _, err := os.Stat(stores); errors.Is(err, os.ErrNotExist) {
		if err := natsacct.WriteFileAtomic(stores, []byte("# One account per store: omni-nats mint-store --hub-data-dir adds them.\n"), 0o600); err != nil {
			return nil, nil, err
		}
	}
	accounts := filepath.Join(dir, "accounts.conf")
	if err := natsacct.WriteFileAtomic(accounts, []byte(natsacct.Accounts("{nkey: "+pub+"}")), 0o600); err != nil {
		return nil, nil, err
	}
	srv, err := natsembed.Start(natsembed.Options{
		Listen:       h.cfg.NATSListen,
		StoreDir:     filepath.Join(h.cfg.DataDir, "nats"),
		AccountsFile: accounts,
		Watch:        []string{stores},
		Logger:       h.log.With("component", "nats"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("hub: embedded NATS on %s (pass --nats-listen with a free port, or port 0): %w", h.cfg.NATSListen, err)
	}
	opts, err := natsauth.Settings{Creds: seedFile}.Options()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, opts, nil
}

// downJetStream returns the JetStream the down-sync buckets live in: the
// DOWN account's, through the hub account's import, on a server set up by
// shared/natsacct (the embedded one, deploy/nats); the hub's own on a
// server with one account.
func downJetStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (jetstream.JetStream, bool, error) {
	djs, err := jetstream.NewWithAPIPrefix(nc, natsacct.DownAPIPrefix)
	if err != nil {
		return nil, false, fmt.Errorf("hub: %w", err)
	}
	_, err = djs.AccountInfo(ctx)
	switch {
	case err == nil:
		return djs, true, nil
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders):
		return js, false, nil
	}
	return nil, false, fmt.Errorf("hub: the down-sync account's JetStream: %w", err)
}
