package downsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Pickup orders are private to the store that hands them over, so they do
// not go into Bucket (which every store reads whole) but into a bucket of
// their own whose keys start with the store: a store's credentials let it
// create consumers on that bucket's stream only with its own subject filter
// (PickupFilter), which the server checks against the consumer's
// configuration, and nothing else on that stream (no stream info, no direct
// or message gets), so it can neither read nor learn the keys of another
// store's orders. See deploy/nats.
//
// Every reservation the hub knows is published under its location, open or
// closed, so a store sees an order appear, change and be collected or
// cancelled; a key holds only the latest document (history 1), and a
// closed order is deleted from the bucket some days after it closed.
const (
	PickupBucket = "omni_pickup"
	PickupStream = "KV_" + PickupBucket
	// PickupSubjectPrefix: the subject of pickup key k is
	// PickupSubjectPrefix + k.
	PickupSubjectPrefix = "$KV." + PickupBucket + "."
)

// Pickup states.
const (
	PickupOpen      = "open"      // reserved, waiting to be collected
	PickupCollected = "collected" // fulfilled: handed over
	PickupCancelled = "cancelled" // released
)

// PickupDoc is one order to pick up in a store (a reservation at the
// store's location): the value of PickupKey.
type PickupDoc struct {
	ReservationID string `json:"reservation_id"`
	// Store is the location the goods are reserved at.
	Store string `json:"store"`
	// State is PickupOpen, PickupCollected or PickupCancelled.
	State string       `json:"state"`
	Lines []PickupLine `json:"lines"`
	// ReservedMS is the wall time of the reservation's newest reserve
	// event; ClosedMS of the fulfil or release that closed it (0: open).
	ReservedMS int64 `json:"reserved_ms,omitempty"`
	ClosedMS   int64 `json:"closed_ms,omitempty"`
	Version    int64 `json:"version"`
	UpdatedMS  int64 `json:"updated_ms"`
}

// PickupLine is one line of a pickup order.
type PickupLine struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// PickupKey is the key of a reservation's pickup document.
func PickupKey(store, reservationID string) string {
	return Token(store) + "." + Token(reservationID)
}

// PickupSubject is the stream subject that stores pickup key k.
func PickupSubject(key string) string { return PickupSubjectPrefix + key }

// PickupFilter is the only subject filter a store may read the pickup
// bucket with: its own orders.
func PickupFilter(store string) string { return PickupSubjectPrefix + Token(store) + ".>" }

// ParsePickupKey takes a pickup key (or its full subject) apart.
func ParsePickupKey(key string) (store, reservationID string, err error) {
	key = strings.TrimPrefix(key, PickupSubjectPrefix)
	st, id, ok := strings.Cut(key, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrKey, key)
	}
	s, err1 := ParseToken(st)
	r, err2 := ParseToken(id)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("%w: %q: %v", ErrKey, key, err)
	}
	return s, r, nil
}

// PickupBucketConfig is the pickup bucket's configuration, like Bucket's.
// (JetStream enables direct gets on every KV bucket; store credentials
// may not use them.)
func PickupBucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       PickupBucket,
		Description:  "omnisync down-sync: each store's pickup orders, readable by that store only",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
		MaxValueSize: 1 << 20,
		Compression:  true,
	}
}

// EnsurePickupBucket creates the pickup bucket, or opens it if it exists,
// with PickupBucketConfig's replicas, as EnsureBucket does. Only the hub
// calls it.
func EnsurePickupBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return ensure(ctx, js, PickupBucketConfig(replicas))
}
