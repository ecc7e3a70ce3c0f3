// Package natsauth turns the NATS credentials and TLS settings that both
// binaries take (--nats-creds, --nats-ca, --nats-cert, --nats-key) into
// connection options, so the agent and the hub authenticate the same way.
package natsauth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Settings are a client's NATS credentials and TLS files; empty fields are
// not used.
type Settings struct {
	// Creds is a credentials file: a JWT and nkey seed (decentralized
	// authentication, `nsc generate creds`), or a bare nkey seed (what
	// omni-nats mint-store writes, for servers that list users' public
	// keys in their configuration).
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

// Options returns the connect options for s. A credentials file is read
// here, so a missing or unreadable one is an error at start-up rather than
// an endless series of refused connections.
func (s Settings) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if s.Creds != "" {
		b, err := os.ReadFile(s.Creds)
		if err != nil {
			return nil, fmt.Errorf("nats-creds: %w", err)
		}
		if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
			opts = append(opts, nats.UserCredentials(s.Creds))
		} else {
			o, err := nats.NkeyOptionFromSeed(s.Creds)
			if err != nil {
				return nil, fmt.Errorf("nats-creds %s: neither a JWT credentials file nor an nkey seed: %w", s.Creds, err)
			}
			opts = append(opts, o)
		}
		clear(b)
	}
	if s.CA != "" {
		opts = append(opts, nats.RootCAs(s.CA))
	}
	if s.Cert != "" || s.Key != "" {
		opts = append(opts, nats.ClientCert(s.Cert, s.Key))
	}
	return opts, nil
}

// Persistent are the connect options both binaries share so that a
// refused credential is not fatal: nats.go gives up on a server that
// refuses the same credentials twice, which would leave an agent offline
// until restarted when its store is admitted a moment after it started,
// or its credentials are fixed on the server.
func Persistent() []nats.Option { return []nats.Option{nats.IgnoreAuthErrorAbort()} }

// ErrorHandler logs the connection's asynchronous errors on log with msg,
// each distinct error at most once a minute: a refused credential or a
// permission the server denies repeats at every attempt.
func ErrorHandler(log *slog.Logger, msg string) nats.ErrHandler {
	var mu sync.Mutex
	last := map[string]time.Time{}
	return func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if err == nil {
			return
		}
		mu.Lock()
		now, key := time.Now(), err.Error()
		quiet := now.Sub(last[key]) < time.Minute
		if !quiet {
			if len(last) > 100 {
				clear(last)
			}
			last[key] = now
		}
		mu.Unlock()
		if !quiet {
			log.Warn(msg, "err", err)
		}
	}
}
