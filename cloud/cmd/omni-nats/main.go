// Command omni-nats admits stores to the chain's NATS server: it makes a
// store's credentials (an nkey seed, written 0600, shown nowhere) and adds
// the store's account, which only the public key goes into, to the
// server's stores.conf (deploy/nats, or the hub's embedded server with
// --hub-data-dir). It also renders the stores admitted by an earlier
// release with today's permissions (refresh-stores), writes the
// environment of a store's NATS leaf node (leaf-env) and hashes passwords
// for configurations that keep password users (passwd).
//
//	omni-nats mint-store --conf-dir /etc/omnisync/nats --out store-17.nk store-17
//	omni-nats mint-store --hub-data-dir omni-data/hub --out store-17.nk store-17
//	omni-nats mint-store --hub-data-dir omni-data/hub --web-channel --out online.nk online
//	omni-nats refresh-stores --conf-dir /etc/omnisync/nats
//	omni-nats leaf-env --creds store-17.nk --hub nats-leaf://nats-1:7422,nats-leaf://nats-2:7422 --hub-ca ca.pem --out leaf.env store-17
//	omni-nats passwd < password-file
//
// Exit status: 0 done, 1 refused or failed, 2 usage error.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/omnisync/omnisync/shared/natsacct"
)

var version = "dev"

// usageError marks errors that exit 2.
type usageError struct{ error }

func main() {
	root := &cobra.Command{
		Use:           "omni-nats",
		Short:         "admit stores to the chain's NATS server",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(mintCmd(), refreshCmd(), leafEnvCmd(), passwdCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "omni-nats:", err)
		var u usageError
		if errors.As(err, &u) || strings.Contains(err.Error(), "accepts ") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func mintCmd() *cobra.Command {
	var confDir, hubData, out, online string
	var web bool
	c := &cobra.Command{
		Use:   "mint-store STORE",
		Short: "make a store's NATS credentials and add its account to stores.conf",
		Long: `Makes a store's NATS credentials: an nkey seed written to --out (mode 0600,
never printed), and the store's account, holding only the public key, added
to stores.conf in --conf-dir (a deploy/nats directory; reload the server
afterwards) or in the hub's data directory (--hub-data-dir; the hub's
embedded server admits the store within seconds). Give the file to the
store's agents as --nats-creds.

The web channel's location (online, or the hub's --online-location) is
refused unless --web-channel says it is meant: its events may release and
fulfil any store's orders, so only the web shop's agent may have them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			store := args[0]
			switch {
			case (confDir == "") == (hubData == ""):
				return usageError{errors.New("give --conf-dir or --hub-data-dir")}
			case hubData != "":
				confDir = filepath.Join(hubData, "nats-auth")
			}
			if out == "" {
				out = store + ".nk"
			}
			pub, err := natsacct.MintStoreWith(confDir, store, out, time.Now(), natsacct.MintOptions{WebChannel: web, Online: online})
			if err != nil {
				return err
			}
			fmt.Printf("store %s admitted (public key %s); its agents use --nats-creds %s\n", store, pub, out)
			return nil
		},
	}
	c.Flags().StringVar(&confDir, "conf-dir", "", "directory of the server's configuration (deploy/nats): stores.conf is there")
	c.Flags().StringVar(&hubData, "hub-data-dir", "", "the hub's --data-dir, for its embedded NATS server")
	c.Flags().StringVar(&out, "out", "", "where to write the store's credentials (default STORE.nk)")
	c.Flags().BoolVar(&web, "web-channel", false, "mint the web channel's credentials (the online location, which may release and fulfil any store's orders)")
	c.Flags().StringVar(&online, "online-location", natsacct.DefaultOnline, "the web channel's location, as the hub's --online-location")
	return c
}

func refreshCmd() *cobra.Command {
	var confDir, hubData string
	c := &cobra.Command{
		Use:   "refresh-stores",
		Short: "render every store in stores.conf again with this release's permissions",
		Long: `Renders every store's account in stores.conf again, as mint-store writes it
in this release, keeping each store's key (or password hash) and the time
it was minted: stores admitted by an earlier release get the permissions a
newer one grants (such as reading the down-sync buckets through a leaf
node), without new credentials. Reload the server twice afterwards (every
node of a cluster); a store's leaf node takes the new permissions when it
next connects.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			switch {
			case (confDir == "") == (hubData == ""):
				return usageError{errors.New("give --conf-dir or --hub-data-dir")}
			case hubData != "":
				confDir = filepath.Join(hubData, "nats-auth")
			}
			path := filepath.Join(confDir, natsacct.StoresFile)
			n, err := natsacct.RefreshStores(path)
			if err != nil {
				return err
			}
			fmt.Printf("%d stores rendered again in %s\n", n, path)
			return nil
		},
	}
	c.Flags().StringVar(&confDir, "conf-dir", "", "directory of the server's configuration (deploy/nats): stores.conf is there")
	c.Flags().StringVar(&hubData, "hub-data-dir", "", "the hub's --data-dir, for its embedded NATS server")
	return c
}

func leafEnvCmd() *cobra.Command {
	var creds, out, hubCA string
	var hubs []string
	c := &cobra.Command{
		Use:   "leaf-env STORE",
		Short: "write the environment of a store's NATS leaf node (deploy/nats/leaf/leaf.conf)",
		Long: `Writes the environment deploy/nats/leaf/leaf.conf runs with for a store:
its server name (omni-leaf-STORE) and JetStream domain (store-STORE), which
must never change once it has run, the store's public key (its devices log
in to the leaf with the store's credentials file), the seed from the
store's credentials (the leaf logs in to the hub as the store), the
hub's leaf node URLs and the CA of the hub's certificate (the uplink is
TLS). --out is written 0600 (it holds the seed, which is
never printed); give it to nats-server as systemd's EnvironmentFile, or
with set -a; . FILE. Add OMNI_LEAF_PORT and OMNI_LEAF_STORE_DIR.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if creds == "" || out == "" || hubCA == "" || len(hubs) == 0 {
				return usageError{errors.New("give --creds, --hub, --hub-ca and --out")}
			}
			env, err := natsacct.LeafEnv(args[0], creds, hubs, hubCA)
			if err != nil {
				return err
			}
			if err := natsacct.WriteFileAtomic(out, []byte(env), 0o600); err != nil {
				return err
			}
			fmt.Printf("leaf node of store %s: %s (server %s, JetStream domain %s); its devices connect to it with --nats-js-domain %s\n",
				args[0], out, natsacct.LeafName(args[0]), natsacct.LeafDomain(args[0]), natsacct.HubDomain)
			return nil
		},
	}
	c.Flags().StringVar(&creds, "creds", "", "the store's credentials file (omni-nats mint-store)")
	c.Flags().StringSliceVar(&hubs, "hub", nil, "the hub's leaf node URLs, nats-leaf://host:7422 (repeat, or comma-separated: every node of a cluster)")
	c.Flags().StringVar(&hubCA, "hub-ca", "", "the CA (PEM) of the hub's certificate")
	c.Flags().StringVar(&out, "out", "", "the environment file to write (0600)")
	return c
}

func passwdCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "passwd",
		Short: "print the bcrypt hash of the password read from standard input (its first line)",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("reading the password from standard input: %w", err)
			}
			pw := strings.TrimRight(line, "\r\n")
			if len(pw) < 16 {
				return errors.New("the password must be at least 16 characters")
			}
			h, err := bcrypt.GenerateFromPassword([]byte(pw), 11)
			if err != nil {
				return err
			}
			fmt.Println(string(h))
			return nil
		},
	}
}
