package downsync

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxConsumers is the consumer limit of every bucket's stream: each
// connected agent reads each bucket through a consumer of its own, and
// nats-server (2.11 and later) caps a stream that sets no limit at 1,000
// consumers (jetstream.limits.default_max_consumers), which a chain of more
// than 1,000 agents would hit ("maximum consumers limit reached"). An
// unlimited stream (-1) counts as unset, so the limit is a number.
const MaxConsumers = 100_000

// BucketConfig is the bucket's configuration: history 1 (a key keeps only
// its latest value, which is what makes catch-up cost what changed), file
// storage, and replicas as the deployment has them (3 on a cluster).
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "omnisync down-sync: catalog, prices, review summaries and stock for the stores",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		// Values are small documents; a product with many variants is the
		// largest, well below this.
		MaxValueSize: 1 << 20,
		Compression:  true,
	}
}

// EnsureBucket creates the bucket, or opens it if it exists, with
// BucketConfig's replicas: an existing bucket with others (a chain that
// moved from one NATS server to a cluster) is scaled to them. Only the
// hub calls it; agents may not create streams.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return ensure(ctx, js, BucketConfig(replicas))
}

// ensure creates the bucket of cfg, or opens it and scales it to
// cfg.Replicas.
func ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("downsync: bucket %s: %w", cfg.Bucket, err)
	}
	s, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("downsync: bucket %s: %w", cfg.Bucket, err)
	}
	if sc := s.CachedInfo().Config; sc.Replicas != cfg.Replicas || sc.MaxConsumers != MaxConsumers {
		// Only the replicas and the consumer limit: the rest of an
		// existing bucket's configuration is left as it was made.
		sc.Replicas, sc.MaxConsumers = cfg.Replicas, MaxConsumers
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("downsync: bucket %s: %d replicas, %d consumers: %w", cfg.Bucket, cfg.Replicas, MaxConsumers, err)
		}
	}
	return kv, nil
}
