package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/natsacct"
)

// agentUnit is deploy/systemd/omni-edge.service (a test keeps the two
// equal): the store machine's service, hardened, with its serial ports.
//
//go:embed omni-edge.service
var agentUnit string

// provision is what `omnictl stores provision` writes for one store.
type provision struct {
	store, device, natsURL string
	// confDir is the NATS server's configuration directory (its
	// stores.conf); out the directory the files are written to; etc where
	// they will be on the store's machine.
	confDir, out, etc string
	nearby            []string
	onlineLocation    string
}

// agentConfig is the agent's config file; the keys are omni-edge's
// settings (agent.Config's mapstructure names).
type agentConfig struct {
	Store          string   `yaml:"store"`
	Device         string   `yaml:"device"`
	NATSURL        string   `yaml:"nats-url"`
	NATSCreds      string   `yaml:"nats-creds"`
	DataDir        string   `yaml:"data-dir"`
	HTTP           string   `yaml:"http"`
	Profiles       string   `yaml:"profiles"`
	OnlineLocation string   `yaml:"online-location"`
	Nearby         []string `yaml:"nearby,omitempty"`
	LogLevel       string   `yaml:"log-level"`
}

// run mints the store's credentials and writes the three files. Nothing is
// overwritten: a directory that already holds one of them is refused
// before anything is minted.
func (p provision) run(stdout io.Writer) error {
	if err := events.ValidToken(p.store); err != nil {
		return usageError{fmt.Errorf("store: %w", err)}
	}
	if err := events.ValidToken(p.device); err != nil {
		return usageError{fmt.Errorf("--device: %w", err)}
	}
	if !strings.Contains(p.natsURL, "://") {
		return usageError{fmt.Errorf("--nats-url %q: the address the store's agents reach the chain's NATS at (nats://host:4222)", p.natsURL)}
	}
	if err := os.MkdirAll(p.out, 0o700); err != nil {
		return err
	}
	credsName := p.store + ".nk"
	files := map[string]string{"creds": filepath.Join(p.out, credsName), "config": filepath.Join(p.out, "agent.yaml"), "unit": filepath.Join(p.out, "omni-edge.service")}
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%s exists; provision into an empty directory", f)
		}
	}
	cfg := agentConfig{
		Store: p.store, Device: p.device, NATSURL: p.natsURL, NATSCreds: filepath.Join(p.etc, credsName),
		DataDir: "/var/lib/omni-edge", HTTP: "127.0.0.1:7070", Profiles: "/usr/share/omnisync/firmware-configs",
		OnlineLocation: p.onlineLocation, Nearby: p.nearby, LogLevel: "info",
	}
	var conf bytes.Buffer
	fmt.Fprintf(&conf, "# omni-edge --config %s: store %s, provisioned %s.\n", filepath.Join(p.etc, "agent.yaml"), p.store, time.Now().UTC().Format(time.DateOnly))
	conf.WriteString("# List the store's scanners and RFID readers under devices: (see firmware-configs/SCHEMA.md).\n")
	enc := yaml.NewEncoder(&conf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return err
	}
	unit := agentUnit
	if p.etc != "/etc/omnisync" {
		unit = strings.ReplaceAll(unit, "/etc/omnisync/agent.yaml", filepath.Join(p.etc, "agent.yaml"))
	}
	pub, err := natsacct.MintStore(p.confDir, p.store, files["creds"], time.Now())
	if err != nil {
		return err
	}
	if err := errors.Join(os.WriteFile(files["config"], conf.Bytes(), 0o640), os.WriteFile(files["unit"], []byte(unit), 0o644)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `store %s admitted to the NATS server in %s (public key %s)
wrote %s (secret, 0600), %s and %s
on the store's machine:
  install -m 0600 -o omni-edge %s %s/
  install -m 0640 -g omni-edge %s %s/
  install -m 0644 %s /etc/systemd/system/
  systemctl enable --now omni-edge
`, p.store, p.confDir, pub, files["creds"], files["config"], files["unit"],
		files["creds"], p.etc, files["config"], p.etc, files["unit"])
	if !strings.Contains(p.confDir, "nats-auth") {
		fmt.Fprintln(stdout, "then reload the NATS servers twice (nats-server --signal reload): see deploy/nats/README.md")
	}
	return nil
}

func provisionCmd(stdout io.Writer) *cobra.Command {
	var p provision
	var hubData string
	c := &cobra.Command{
		Use:   "provision STORE --out DIR (--conf-dir DIR | --hub-data-dir DIR) --nats-url URL",
		Short: "admit a store and write its agent's credentials, config file and systemd unit",
		Long: `Admits a store to the chain's NATS server (as omni-nats mint-store does) and
writes, into --out, what its machine needs: STORE.nk (the store's NATS
credentials, 0600), agent.yaml (omni-edge's config file) and
omni-edge.service (the hardened systemd unit), ready to copy to
--install-dir (/etc/omnisync) on the store's machine.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			p.store = args[0]
			switch {
			case p.out == "":
				return usageError{errors.New("give --out DIR")}
			case (p.confDir == "") == (hubData == ""):
				return usageError{errors.New("give --conf-dir (the NATS server's deploy/nats directory) or --hub-data-dir (a hub's embedded server)")}
			case hubData != "":
				p.confDir = filepath.Join(hubData, "nats-auth")
			}
			return p.run(stdout)
		},
	}
	f := c.Flags()
	f.StringVar(&p.out, "out", "", "directory to write the store's files to (created; must not hold them already)")
	f.StringVar(&p.confDir, "conf-dir", "", "the NATS server's configuration directory (deploy/nats): its stores.conf admits the store")
	f.StringVar(&hubData, "hub-data-dir", "", "the hub's --data-dir, when the store connects to the hub's embedded NATS server")
	f.StringVar(&p.natsURL, "nats-url", "", "where the store's agents reach the chain's NATS (nats://nats.example.com:4222)")
	f.StringVar(&p.device, "device", "pos-1", "the agent's device id")
	f.StringVar(&p.etc, "install-dir", "/etc/omnisync", "where the files go on the store's machine (the config and unit name it)")
	f.StringSliceVar(&p.nearby, "nearby", nil, "stores whose stock its shoppers see as nearby")
	f.StringVar(&p.onlineLocation, "online-location", "online", `location of the online warehouse ("" for none)`)
	return c
}
