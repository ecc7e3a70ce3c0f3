// Command omni-nats admits stores to the chain's NATS server: it makes a
// store's credentials (an nkey seed, written 0600, shown nowhere) and adds
// the store's account, which only the public key goes into, to the
// server's stores.conf (deploy/nats, or the hub's embedded server with
// --hub-data-dir). It also hashes passwords for configurations that keep
// password users (passwd).
//
//	omni-nats mint-store --conf-dir /etc/omnisync/nats --out store-17.nk store-17
//	omni-nats mint-store --hub-data-dir omni-data/hub --out store-17.nk store-17
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
	root.AddCommand(mintCmd(), passwdCmd())
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
	var confDir, hubData, out string
	c := &cobra.Command{
		Use:   "mint-store STORE",
		Short: "make a store's NATS credentials and add its account to stores.conf",
		Long: `Makes a store's NATS credentials: an nkey seed written to --out (mode 0600,
never printed), and the store's account, holding only the public key, added
to stores.conf in --conf-dir (a deploy/nats directory; reload the server
afterwards) or in the hub's data directory (--hub-data-dir; the hub's
embedded server admits the store within seconds). Give the file to the
store's agents as --nats-creds.`,
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
			pub, err := natsacct.MintStore(confDir, store, out, time.Now())
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
