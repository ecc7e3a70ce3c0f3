// Package loadgen drives real store agents' POS APIs (POST /v1/events) with
// realistic traffic and records every event an agent accepted, as its whole
// envelope, so that an oracle can compute the books the hub must end with.
// It exists to prove the platform's promise under load, kills and
// partitions: a 202 from an agent is an event the hub applies exactly once,
// whatever happens in between, and nothing else reaches the books.
//
// The traffic (Options): sales of 1–3-line baskets, returns of what was
// sold, receipts of deliveries, adjustments, stock counts, online
// reservations with their releases and fulfilments, product reviews and
// scans, in a configurable Mix; SKUs drawn with Zipf popularity; a total
// rate paced by a token bucket per store, optionally following a day-shaped
// curve (Diurnal); stores whose POS is closed during Offline windows. Each
// target is served by Workers tills, each waiting for its answer before its
// next sale, like a real POS.
//
// The client behaves like a careful till. Every request carries its own
// Idempotency-Key; a request without a definitive answer (connection
// refused or reset, timeout, 5xx) is sent again with the same key and body,
// with backoff, until it gets one: 202 (accepted; a replayed answer, header
// Idempotent-Replayed, counts once), 507 (refused: the agent's disk budget
// is exhausted, nothing was written) or another 4xx (a bug in the agent or
// here: reported in Report.Rejected).
//
// The oracle: Expected replays accepted envelopes through inventory.Book,
// the rules' naive reference; FetchBooks reads the hub's books through its
// API; Compare lists the differences; Tally sets the hub's applied-event
// count of each device against the events its agent accepted (more applied
// means double-applied, fewer after the drain means lost). A Checker does
// all of it, and Checker.Wait (or Verify) waits for the hub to drain.
//
// Guarantees: every envelope in Report.Accepted (and in the Record stream)
// was answered 202 by its agent, exactly as the agent stored it (id, origin,
// HLC, kind, and the body with the location the agent filled in), once per
// event however many times its request was retried.
//
// Sharp edges:
//
//   - A request still without a definitive answer when the run ends (its
//     agent stayed down past Options.Settle) is listed in Report.Unresolved:
//     its events may or may not be durable, so the oracle is exact only when
//     that list is empty. Generator.Resolve retries them later (agents
//     remember keys for 24 hours).
//   - The hub counts every event a device ever sent, over all its epochs, and
//     dead-lettered events are not counted as applied; Tally is exact only
//     when the recorded events are every event those devices sent (fresh
//     agents, no other POS, no simulated one) and none is dead-lettered. A
//     full outbox may also evict scans (compactable) before they sync: they
//     show as lost.
//   - The books compared are on_hand and reserved per (SKU, location);
//     safety stock does not come from events. Compare treats a position
//     missing on one side as zero, and a Checker reads only the locations
//     the recorded events touched.
//   - Reservation ids, review sessions and idempotency keys embed
//     Options.RunID, so runs against the same hub and agents never collide.
//     The traffic is deterministic for a seed only per till and only when
//     the agents answer alike; with several tills the interleaving is not.
package loadgen
