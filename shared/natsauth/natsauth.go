// Package natsauth turns the NATS credentials and TLS settings that both
// binaries take (--nats-creds, --nats-ca, --nats-cert, --nats-key) into
// connection options, so the agent and the hub authenticate the same way.
package natsauth

import (
	"errors"

	"github.com/nats-io/nats.go"
)

// Settings are a client's NATS credentials and TLS files; empty fields are
// not used.
type Settings struct {
	// Creds is a credentials file (JWT and nkey seed).
	Creds string
	// CA is a PEM file of the CA that signed the server's certificate.
	CA string
	// Cert and Key are a client certificate and its key, for servers that
	// verify clients (mutual TLS); both or neither.
	Cert, Key string
}

// Validate reports a certificate given without its key, or the reverse.
func (s Settings) Validate() error {
	if (s.Cert == "") != (s.Key == "") {
		return errors.New("nats-cert and nats-key: give both or neither")
	}
	return nil
}

// Options returns the connect options for s.
func (s Settings) Options() []nats.Option {
	var opts []nats.Option
	if s.Creds != "" {
		opts = append(opts, nats.UserCredentials(s.Creds))
	}
	if s.CA != "" {
		opts = append(opts, nats.RootCAs(s.CA))
	}
	if s.Cert != "" || s.Key != "" {
		opts = append(opts, nats.ClientCert(s.Cert, s.Key))
	}
	return opts
}
