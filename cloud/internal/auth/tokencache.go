package auth

import (
	"context"
	"sync"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// TokenCacheTTL is how long a token's lookup (the token row and its user)
// is reused before the database is asked again. An API call then costs no
// query of its own for its token, which matters for the web shop's cart
// API (thousands of calls a second from a few tokens). The price is
// bounded: a token revoked, or a user disabled or changed, through this
// hub process takes effect at once (the cache is emptied); through
// another hub replica, within TokenCacheTTL.
const TokenCacheTTL = 2 * time.Second

// tokenCacheMax bounds the entries; a full cache starts over.
const tokenCacheMax = 4096

type tokenEntry struct {
	t  store.APIToken
	u  store.User
	at time.Time
}

// tokenCache remembers token lookups by secret hash for TokenCacheTTL.
// Lookups that fail (unknown token) are not remembered.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*tokenEntry
}

// lookup returns the token with hash and its user, from the cache when
// looked up less than TokenCacheTTL ago.
func (c *tokenCache) lookup(ctx context.Context, st Store, hash string, now time.Time) (store.APIToken, store.User, error) {
	c.mu.Lock()
	e := c.m[hash]
	c.mu.Unlock()
	if e != nil && now.Sub(e.at) < TokenCacheTTL && !now.Before(e.at) {
		return e.t, e.u, nil
	}
	t, u, err := st.TokenUser(ctx, hash)
	if err != nil {
		return t, u, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[string]*tokenEntry{}
	}
	c.m[hash] = &tokenEntry{t: t, u: u, at: now}
	c.mu.Unlock()
	return t, u, nil
}

// touched records that the token with hash was marked used at now, so
// the cached copy does not mark it again.
func (c *tokenCache) touched(hash string, now time.Time) {
	c.mu.Lock()
	if e := c.m[hash]; e != nil {
		e.t.LastUsed = now
	}
	c.mu.Unlock()
}

// flush forgets every lookup: a token or user changed.
func (c *tokenCache) flush() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
