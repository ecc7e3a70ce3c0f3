package store

import (
	"encoding/hex"
	"encoding/json"

	"github.com/omnisync/omnisync/cloud/internal/identity"
)

func identityDefaultPolicy() identity.Policy { return identity.DefaultPolicy() }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

// newStoreForFuzz is a store with its defaults and no database.
func newStoreForFuzz() *Store {
	s := &Store{}
	s.custPolicy = identityDefaultPolicy()
	return s
}
