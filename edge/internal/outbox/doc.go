// Package outbox is the store agent's durable outbox: the bbolt file where
// every event a POS, a kiosk or a device produces waits, in seq order, until
// the hub says it has durably applied it.
//
// Guarantee: an Append that returned a nil error has been written and
// fsync'd; its events survive a SIGKILL of the agent and a power loss of the
// machine (bbolt's copy-on-write B+tree needs no recovery: a transaction that
// had not finished committing is simply not there). An event leaves the
// outbox only through Ack, which the uplink calls when the hub reports that
// it has durably applied everything up to a seq. Nothing is ever evicted:
// when the disk budget runs out new events are refused with ErrFull, the
// ones already accepted are kept.
//
// Events are never edited, with one exception: Scrub rewrites pending
// events' bodies (an erasure removing a person's identifiers), keeping
// their ids, seqs and stamps, in one transaction.
//
// Every event gets its envelope here: a UUIDv7 id, its origin (store,
// device, the outbox's epoch, a seq that starts at 1 and is contiguous and
// strictly increasing within the epoch) and a hybrid-logical-clock stamp that
// never goes backwards, not even across restarts with a wall clock that did.
// A new epoch is minted only when the file is created, so a re-imaged device
// never reuses an (epoch, seq) pair.
//
// Throughput comes from group commit: one committer goroutine writes every
// Append queued while the previous transaction was being fsync'd in one
// bbolt transaction, and answers each caller after that fsync.
//
// Sharp edges:
//   - An Append whose context ends before its transaction commits returns
//     ctx.Err(), and its events may or may not have been written (they may
//     already be in the transaction being fsync'd). The POS gets a timeout,
//     never a false 202; but a retry is a new event (new id, new seq), so
//     the hub's (device, epoch, seq) deduplication cannot merge it with the
//     first attempt. Only a key in the body (an order id) can. Give Append a
//     generous deadline rather than a tight one.
//   - One process per file. bbolt takes an exclusive file lock; a second
//     Open of the same file (from any process) fails after about a second
//     with ErrLocked.
//   - Bodies are the caller's to validate (events.ParseDrafts at the HTTP
//     edge). The outbox checks only what it needs to write a well-formed
//     envelope: a known kind, JSON data, and the MaxEventBytes limit.
//   - Records returned by Read are copies and safe to keep; the bbolt file
//     itself must not be opened by anything else while the agent runs.
//   - The file is memory-mapped. On Linux the outbox keeps little of it
//     resident: Open, Ack, and Read and Append every megabyte or so drop
//     the mapped pages from the process's resident set, so a backlog,
//     filling up or being drained, does not show up in the agent's RSS;
//     elsewhere the pages stay mapped until the kernel reclaims them.
package outbox
