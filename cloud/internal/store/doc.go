// Package store is the hub's SQL store: one schema and one code path on
// SQLite (the embedded default, modernc.org/sqlite) and PostgreSQL (pgx
// through database/sql), with the few dialect differences kept in
// dialect.go. It persists what the rules of cloud/internal/inventory
// compute: stock positions, the stock ledger, reservations, oversell
// conflicts, dead letters, per-device dedup state and heartbeats.
//
// Guarantee: ApplyBatch is atomic — every effect of a batch (dedup state,
// ledger, stock, reservations, conflicts, dead letters, device progress)
// commits in one transaction, or none does — and a committed item is never
// applied again: dedup is exact by (store, device, epoch, seq), with state
// bounded per device epoch (a contiguous watermark plus at most MaxAhead
// seqs above it), so an event replayed at any age, by any replica, changes
// nothing. A committed batch is durable (SQLite synchronous=FULL;
// PostgreSQL with synchronous_commit on, its default), so the hub may
// acknowledge its events once ApplyBatch returns. The books depend only on the set of events applied,
// never on their order, duplication or batching.
//
// Throughput: a batch costs a fixed number of statements whatever its size
// (about ten on PostgreSQL, each carrying all the batch's rows in arrays,
// the ledger lines in one COPY; fewer on SQLite), touching only the rows
// the batch names. A position whose new lines are all deltas stamped after
// its count is written with one upsert and no read. A batch holding a line
// the ledger already has (an event id resent under another origin) is
// rolled back and done again, finding out which lines are new. Batches of
// one to five thousand events are the intended size.
//
// Concurrency: any number of Stores (hub replicas) may apply batches to one
// PostgreSQL database at once. Each transaction locks the rows it touches,
// in one global order (LOCKS.md), and transactions that still lose a
// deadlock or serialization conflict are retried whole. On SQLite one
// writer connection serialises writes; reads use separate read-only
// connections and never wait for writes (WAL).
//
// Sharp edges:
//   - An item with no usable origin (empty store or device, zero epoch or
//     seq) cannot be deduplicated: it is dead-lettered every time it is
//     delivered, and logged. Use AddDeadLetter for messages that do not
//     decode at all.
//   - Stamps are compared in SQL as packed HLCs (hlc.Timestamp.Pack), then
//     event id bytewise; this agrees with events.Stamp while HLC logical
//     counters stay below 2^16.
//   - Items beyond their device's watermark+MaxAhead are Deferred, not
//     errors: the caller must redeliver them (NAK them) later.
//   - Reads (StockForSKU, ListStock, Conflicts, Devices, ...) on an unknown
//     key return an empty slice, not an error.
//   - Stock rows are created on first touch (an event, a reservation, a
//     safety stock) and never deleted: a position back at zero stays listed.
//   - The stock ledger keeps every applied line forever (it is the sales
//     history); there is no retention yet. Deleting rows by hand (ledger,
//     dedup state) voids the guarantees.
//   - Conflict reservations and suggestions are computed when Conflicts is
//     called, from the books of that moment, for open conflicts only.
package store
