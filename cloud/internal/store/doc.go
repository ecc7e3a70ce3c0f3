// Package store is the hub's SQL store: one schema and one code path on
// SQLite (the embedded default, modernc.org/sqlite) and PostgreSQL (pgx
// through database/sql), with the few dialect differences kept in
// dialect.go. It persists what the hub's pure rules packages decide
// (inventory, reviews, ...): stock positions, the stock ledger and its
// daily totals, reservations, oversell conflicts, reviews, survey answers,
// the automation's rules and jobs, carts, fitting-room visits, baskets and
// products that go together, assist requests, dead letters,
// per-device dedup state, heartbeats, the catalog, HQ identities, the
// chain's shared settings, and customers (customers.go: the identity
// graph over keyed digests, profiles, consent, purchases, interests in
// items (interest.go), erasures; raw personal data only sealed, with keys
// outside the database).
//
// The apply path is a frame (apply.go) and one applier per aggregate
// (appliers.go, apply_*.go): ApplyBatch deduplicates and orders events per
// device, lets gates refuse what the database says may not be applied,
// hands each event to the appliers of its aggregates in a fixed order
// (carts, reservations, ledger, stock, conflicts, reviews, identity,
// profiles, consent, purchases, erasure, surveys, fitting), dead-letters the
// rest, and commits once. An applier reads events into its rules' terms
// before the transaction (Prepare, which a hub runs while the previous
// batch commits) and turns the rules' decisions into rows in it. Adding an
// aggregate is a rules package, one applier file, and its entry in
// newAppliers.
//
// Guarantee: ApplyBatch is atomic — every effect of a batch commits in one
// transaction, or none does — and a committed item is never applied
// again: dedup is exact by (store, device, epoch, seq), with state bounded
// per device epoch (a contiguous watermark plus at most MaxAhead seqs
// above it), so an event replayed at any age, by any replica, changes
// nothing. A committed batch is durable (SQLite synchronous=FULL;
// PostgreSQL with synchronous_commit on, its default), so the hub may
// acknowledge its events once ApplyBatch returns. The books depend only on
// the set of events applied, never on their order, duplication or
// batching; a store speaks only for its own location (inventory.Rules).
//
// Throughput: a batch costs a fixed number of statements whatever its
// size, each carrying all the batch's rows (PostgreSQL: array literals and
// one COPY of the ledger lines; SQLite: prepared multi-row statements),
// touching only the rows the batch names, once each: a batch's lines are
// gathered per position and every touched position is read and written
// once. Positions are named by integer ids, and the ledger's key is all
// integers (eventid.go). Positions' states are cached and not read back:
// on SQLite, whose one writer is this process (a lock file), the cache is
// always right; on PostgreSQL a position is written from it only where its
// row's version is still the cached one, and a batch that meets a stale
// state is redone reading its positions locked (LOCKS.md, level 5).
// Batches of five to twenty thousand events are the intended size.
//
// Concurrency: any number of Stores (hub replicas) may apply batches to one
// PostgreSQL database at once. Each transaction locks the rows it touches,
// in one global order (LOCKS.md), and transactions that still lose a
// deadlock or serialization conflict are retried whole. On SQLite one
// writer connection serialises writes, one hub process per file; reads use
// separate read-only connections and never wait for writes (WAL).
//
// Sharp edges:
//   - An item with no usable origin (empty store or device, zero epoch or
//     seq) cannot be deduplicated: it is dead-lettered every time it is
//     delivered, and logged. Use AddDeadLetter for messages that do not
//     decode at all.
//   - Stamps are compared in SQL as packed HLCs (hlc.Timestamp.Pack), then
//     event id (as two integers: eventid.go); this agrees with
//     events.Stamp while HLC logical counters stay below 2^16 and event ids
//     are lowercase (ingest folds them).
//   - Items beyond their device's watermark+MaxAhead are Deferred, not
//     errors: the caller must redeliver them (NAK them) later.
//   - Reads (StockForSKU, ListStock, Conflicts, Devices, ...) on an unknown
//     key return an empty slice, not an error.
//   - Stock rows are created on first touch (an event, a reservation, a
//     safety stock) and never deleted: a position back at zero stays listed.
//   - The stock ledger keeps raw lines for the retention age (RetainLedger;
//     the hub's --ledger-retention), then daily totals: a count stamped
//     before the retention horizon is dead-lettered, and the second line
//     of defence against one event under two origins (the ledger's key)
//     no longer covers events older than the horizon. Deleting rows by hand
//     (ledger, dedup state) voids the guarantees.
//   - Conflict reservations and suggestions are computed when Conflicts is
//     called, from the books of that moment, for open conflicts only.
package store
