package automation

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/retry"
)

// Webhook headers.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256>" of
	// "<t>.<body>" under the rule's secret: the receiver recomputes it and
	// refuses a stale t, so a captured delivery cannot be replayed later.
	HeaderSignature = "Omni-Signature"
	// HeaderIdempotencyKey is the job's id, the same on every attempt.
	HeaderIdempotencyKey = "Omni-Idempotency-Key"
	// HeaderAttempt counts attempts from 1.
	HeaderAttempt = "Omni-Attempt"
)

// Sign returns the signature header's value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body at now, accepting a
// timestamp at most tolerance away: what a receiver does.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(mac(secret, ts, body)))
}

// MaxAttempts is how many times a job is tried before it is a dead letter.
const MaxAttempts = 8

// RetryDelay is the wait before attempt+1 after attempt failed (attempt
// from 1): the jittered exponential backoff of package retry, from 5
// lo up to hi, drawn afresh because the wait outlives the
// process that failed (the job sleeps in the database).
func RetryDelay(attempt int, lo, hi time.Duration) time.Duration {
	b := retry.Backoff{Min: lo, Max: hi}
	var d time.Duration
	for range max(attempt, 1) {
		d = b.Next()
	}
	return d
}
