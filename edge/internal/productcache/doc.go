// Package productcache is the store agent's local copy of what the hub
// publishes for stores (see shared/downsync): the catalog with prices, review
// summaries, and stock for this store, its nearby stores and the online
// warehouse. It exists so that a shopper who scans a product at a kiosk, a
// mirror or the POS gets an answer in a millisecond from this machine, hub
// or no hub, and so that an agent back from an outage resumes the down-sync
// exactly where it stopped instead of downloading everything again.
//
// The cache is its own bbolt file (cache.db in the agent's data directory),
// apart from the outbox: it holds nothing that cannot be fetched again, so it
// can be deleted or rebuilt (Reset) without touching a single sale.
//
// Guarantees:
//   - Apply writes a batch of bucket messages and the stream sequence of
//     the last one in one bbolt transaction (fsync'd), so after a crash or a
//     power loss the cache holds exactly the messages up to Stats().LastSeq
//     and the down-sync resumes from the next one: nothing is lost, nothing
//     is skipped. A bootstrap, which reads the stream one subject filter at
//     a time, records each filter's progress the same way (ApplyPass).
//   - A document older (by Version) than the one held for its key is
//     ignored, so a redelivered or reordered message never rolls a product,
//     a review summary or a stock position back.
//   - Lookup reads one consistent snapshot (a bbolt read transaction) and
//     takes no other lock: lookups never wait for each other, and never for
//     an Apply beyond bbolt's own remapping of a grown file.
//
// Sharp edges:
//   - One process per file (bbolt's file lock); a second Open fails with
//     ErrLocked after about a second.
//   - Stock is kept only for the locations given in Options (this store,
//     nearby stores, the online location). When that list changes, the
//     stock of locations no longer listed is dropped at Open, and a location
//     newly listed is reported by MissingLocations until the down-sync has
//     read its stock from the start of the stream (MarkLocationsComplete).
//   - The file's layout carries a format number; a file of another format
//     is emptied at Open and bootstrapped again.
package productcache
