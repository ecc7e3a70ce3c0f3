// Package inventory holds the hub's stock reconciliation rules: events in,
// state changes out, no I/O. The store (cloud/internal/store) persists what
// these functions compute; property tests replay shuffled, duplicated and
// delayed logs through them and compare with Book, the naive oracle.
//
// The rules, per stock position (a SKU at a location):
//
//   - on_hand is the latest absolute count (by events.Stamp: HLC, then event
//     id) plus every delta stamped after that count. Deltas stamped before it
//     are already in the count, so a late delta older than the count changes
//     nothing, a late count older than the current one changes nothing, and a
//     newer count supersedes. Without any count, on_hand is the sum of every
//     delta and may be negative (an oversell).
//   - reserved is the sum of the lines of active reservations. A reservation
//     is active iff a reserve for its id has been seen and neither a release
//     nor a fulfil has, whatever the arrival order. The reserve with the
//     newest stamp defines the lines. A fulfil also takes its own lines off
//     on_hand, as a delta at its stamp.
//   - available = on_hand − reserved − safety stock.
//   - a position is oversold iff available < 0; the open conflict names the
//     active reservations at risk there and up to MaxSuggestions other
//     locations with the most available stock of the SKU.
//
// Guarantee: every function here is deterministic and the final state
// depends only on the set of events seen (not their order or duplication),
// provided each event's effect is applied once. Deduplication is the caller's
// job (the store does it by origin and by ledger row).
//
// Sharp edges: the order between events is events.Stamp; the store compares
// packed HLCs (hlc.Timestamp.Pack) in SQL, which agrees with Stamp only while
// HLC logical counters stay below 2^16 (hlc.Clock never exceeds that).
// LastStamp (the "as of" of a position) is informational: it is the newest
// stamp that changed or confirmed the position, and can differ with arrival
// order when an event turns out to change nothing.
package inventory
