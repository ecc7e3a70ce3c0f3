package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// TokenPrefix starts every API token the hub mints, so secret scanners and
// people can recognise one.
const TokenPrefix = "omni_"

// newSecret returns 32 random bytes, base64url-encoded.
func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms.
		panic("auth: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewToken mints an API token.
func NewToken() string { return TokenPrefix + newSecret() }

// HashSecret is what the database keeps of a token or session secret:
// its SHA-256 in hex. The secrets are 256 random bits, so a fast hash is
// enough; no one can guess back from it.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// csrfFor derives a session's CSRF token from its secret: the page shows
// it, the database never holds it, and it reveals nothing of the cookie.
func csrfFor(sessionSecret string) string {
	h := sha256.Sum256([]byte("omnisync csrf\x00" + sessionSecret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// validSecret bounds what is looked up: printable ASCII, a sane length.
func validSecret(s string) bool {
	if len(s) < 16 || len(s) > 256 {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f })
}
