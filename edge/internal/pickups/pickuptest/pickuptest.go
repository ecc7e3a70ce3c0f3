// Package pickuptest plays the hub's part for tests of the agent's pickup
// orders: it owns the pickup bucket on a real NATS server and writes,
// deletes and purges orders the way the hub does. Only tests import it.
package pickuptest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
)

// Hub is a connection with the hub's rights on the pickup bucket.
type Hub struct {
	t  testing.TB
	JS jetstream.JetStream
	// KV is the bucket, nil until CreateBucket.
	KV jetstream.KeyValue
}

// Connect connects to the server at url (closed when the test ends); the
// bucket is not created until CreateBucket.
func Connect(t testing.TB, url string, opts ...nats.Option) *Hub {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &Hub{t: t, JS: js}
}

// CreateBucket creates the bucket (or opens it), retrying for a while:
// right after a delete the server may still be removing the old stream.
func (h *Hub) CreateBucket() *Hub {
	h.t.Helper()
	var err error
	for range 50 {
		if h.KV, err = downsync.EnsurePickupBucket(context.Background(), h.JS, 1); err == nil {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatal(err)
	return h
}

// DeleteBucket deletes the bucket and its stream.
func (h *Hub) DeleteBucket() {
	h.t.Helper()
	if err := h.JS.DeleteKeyValue(context.Background(), downsync.PickupBucket); err != nil {
		h.t.Fatal(err)
	}
	h.KV = nil
}

// Put writes d at its key.
func (h *Hub) Put(d downsync.PickupDoc) {
	h.t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		h.t.Fatal(err)
	}
	h.PutRaw(downsync.PickupKey(d.Store, d.ReservationID), b)
}

// PutRaw writes any value at key: a malformed document, a foreign key.
func (h *Hub) PutRaw(key string, value []byte) {
	h.t.Helper()
	if _, err := h.KV.Put(context.Background(), key, value); err != nil {
		h.t.Fatalf("put %s: %v", key, err)
	}
}

// Delete leaves a delete marker for the order (KV-Operation: DEL).
func (h *Hub) Delete(store, reservationID string) {
	h.t.Helper()
	if err := h.KV.Delete(context.Background(), downsync.PickupKey(store, reservationID)); err != nil {
		h.t.Fatal(err)
	}
}

// Purge purges the order (KV-Operation: PURGE).
func (h *Hub) Purge(store, reservationID string) {
	h.t.Helper()
	if err := h.KV.Purge(context.Background(), downsync.PickupKey(store, reservationID)); err != nil {
		h.t.Fatal(err)
	}
}

// Order returns reservation id at store in state, at version, reserved at
// reservedMS, with one line.
func Order(store, id, state string, version, reservedMS int64) downsync.PickupDoc {
	d := downsync.PickupDoc{
		ReservationID: id, Store: store, State: state,
		Lines:      []downsync.PickupLine{{SKU: "SKU-" + id, Qty: 1}},
		ReservedMS: reservedMS, Version: version, UpdatedMS: reservedMS + version,
	}
	if state != downsync.PickupOpen {
		d.ClosedMS = d.UpdatedMS
	}
	return d
}
