package downsync

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

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

// EnsureBucket creates the bucket, or opens it if it exists. Only the hub
// calls it; agents may not create streams.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, BucketConfig(replicas))
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("downsync: bucket %s: %w", Bucket, err)
	}
	return kv, nil
}
