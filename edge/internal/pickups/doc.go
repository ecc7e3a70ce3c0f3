// Package pickups keeps the store agent's copy of the store's pickup orders:
// online orders reserved at this store, to be collected here (see
// shared/downsync/pickup.go). It exists so that staff at the POS can see
// what to hand over, and to whom, from this machine, hub or no hub.
//
// The hub publishes every order of every store into a bucket of its own
// (downsync.PickupBucket) that a store may read only through consumers
// filtered to its own keys (downsync.PickupFilter): no stream info, no
// KeyValue binding, no direct gets. So the Follower reads it with one
// ordered consumer and exactly one filter subject, and nothing else.
//
// How it stays exact: one store's orders are few and the bucket keeps only
// the latest value of each key, so every session (start, NATS reconnect,
// consumer failure) reads the store's filter from the start of the stream,
// and once the consumer has nothing pending it replaces the whole cached set
// in one bbolt transaction. A crash or a disconnect mid-read leaves the
// previous complete set; orders deleted while the agent was away, and a
// stream the hub recreated, need no special case. After that, live changes
// are applied as they come, a batch per transaction.
//
// Guarantees:
//   - Reads (List, Get, Stats) answer from the cache file alone, online or
//     not; Stats().SyncedAt says when a session last caught up, and
//     Status().Synced whether a session is caught up and live now.
//   - Within a session a document older (by Version) than the one held is
//     ignored. Across sessions the newest complete read wins, whatever the
//     versions: a recreated bucket replaces the old one.
//   - A value, key or document the agent cannot read (bad JSON, a key that
//     does not parse, a store or reservation id that does not match its key
//     or this store) is counted, logged once per key, and skipped; it never
//     stops the follower.
//
// Sharp edges:
//   - The cache is its own file (pickups.db), one process per file (bbolt's
//     lock: a second Open fails with ErrLocked). It holds nothing that the
//     hub cannot send again, so it may be deleted at any time.
//   - A file filled for another store, or of another format, is emptied at
//     Open: an agent must never show another store's orders.
//   - A document is kept as this agent's PickupDoc understands it: fields
//     the hub adds later reach the local API only once this package knows
//     them. A state it does not know is kept and listed, but counted as
//     neither open, collected nor cancelled.
package pickups
