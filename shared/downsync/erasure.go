package downsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Erasure notices (syncproto.ErasureNotice) go to every store, each to that
// store alone, and must reach a store that was offline for days: a bucket
// of their own, keyed <store>.<erasure> like the pickup bucket, which a
// store's credentials can read only through a consumer filtered to its own
// keys (ErasureFilter; see deploy/nats).
//
// The hub writes a key once (create: a key that exists is left alone) and
// never deletes it on a receipt: every device of the store reads it, each
// when it is next online, and each scrubs its own outbox. Keys expire after
// ErasureMaxAge, by which time a device that never came back has been
// re-imaged (and the hub scrubs late events on apply anyway); a key that
// expired while its store still has not answered is written again by the
// hub's next round.
const (
	ErasureBucket = "omni_erase"
	ErasureStream = "KV_" + ErasureBucket
	// ErasureSubjectPrefix: the subject of erasure key k is
	// ErasureSubjectPrefix + k.
	ErasureSubjectPrefix = "$KV." + ErasureBucket + "."
	// ErasureMaxAge is how long a notice is kept.
	ErasureMaxAge = 180 * 24 * time.Hour
)

// ErasureKey is the key of erasure id's notice to store.
func ErasureKey(store, erasure string) string { return Token(store) + "." + Token(erasure) }

// ErasureSubject is the stream subject that stores erasure key k.
func ErasureSubject(key string) string { return ErasureSubjectPrefix + key }

// ErasureFilter is the only subject filter a store may read the erasure
// bucket with: its own notices.
func ErasureFilter(store string) string { return ErasureSubjectPrefix + Token(store) + ".>" }

// ParseErasureKey takes an erasure key (or its full subject) apart.
func ParseErasureKey(key string) (store, erasure string, err error) {
	key = strings.TrimPrefix(key, ErasureSubjectPrefix)
	st, id, ok := strings.Cut(key, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrKey, key)
	}
	s, err1 := ParseToken(st)
	e, err2 := ParseToken(id)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("%w: %q: %v", ErrKey, key, err)
	}
	return s, e, nil
}

// ErasureBucketConfig is the erasure bucket's configuration, like
// PickupBucketConfig's, with notices expiring after ErasureMaxAge.
func ErasureBucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       ErasureBucket,
		Description:  "omnisync: customer erasure notices per store, readable by that store only",
		History:      1,
		TTL:          ErasureMaxAge,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
		MaxValueSize: 4 << 10,
	}
}

// EnsureErasureBucket creates the erasure bucket, or opens it if it
// exists, with ErasureBucketConfig's replicas, as EnsureBucket does. Only
// the hub calls it.
func EnsureErasureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return ensure(ctx, js, ErasureBucketConfig(replicas))
}
