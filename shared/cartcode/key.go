package cartcode

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the name of the hub's signing key in its data directory. The
// key is kept out of the database on purpose: a database dump or replica
// must not be able to sign carts.
const KeyFile = "cart-signing.pem"

// LoadOrCreateKey reads the Ed25519 private key in path (PEM, PKCS #8), or
// makes one and writes it there (mode 0600) when there is none. Several
// hub replicas may each have their own key: every public key is
// down-synced, and a code names the key that signed it.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("cartcode: key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("cartcode: key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("cartcode: key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			// Another process of this data dir made it first.
			return LoadOrCreateKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("cartcode: key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			f.Close()
			return nil, fmt.Errorf("cartcode: key %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("cartcode: key %s: %w", path, err)
		}
		return priv, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("cartcode: key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("cartcode: key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cartcode: key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("cartcode: key %s: not an Ed25519 key", path)
	}
	return priv, nil
}
