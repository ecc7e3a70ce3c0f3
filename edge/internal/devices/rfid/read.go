// Package rfid turns a UHF reader's raw tag reads into what a store means by
// them: an item present in a fitting room (enter/leave with dwell time per
// zone) and stock counted by a sweep.
//
// It is pure logic: no I/O, no goroutines, no clock. Time comes from
// TagRead.At and from the caller's Tick(now), so tests and replays are
// deterministic.
//
//   - Decoder turns EPC hex into an Item (GTIN + serial) through shared/epc,
//     with an LRU cache because a tag in range is read many times a second.
//     Only SGTIN-96/198 tags are items; other well-formed schemes (SSCC,
//     SGLN, GIAI...) are "not an item"; anything malformed is rejected with
//     a Reason.
//   - Smoother tracks each item per configured Zone (antennas of a reader)
//     and reports Presence changes: Enter once a dense enough streak of
//     reads has lasted EnterAfter, Leave after LeaveAfter without a read,
//     Leave + Enter when the item moves to a zone that reads it clearly
//     stronger (SwitchMargin dB of smoothed RSSI).
//   - Sweep counts distinct serials per GTIN over one counting session.
//   - Event, CountEvents and the Draft helpers shape the results as enter,
//     leave and count event bodies.
//
// Guarantees: no input makes it panic (it is fuzzed); a malformed or
// foreign EPC is counted per reader and never becomes a product; per item
// and zone, Enters and Leaves alternate, starting with an Enter, an item is
// present in at most one zone at a time, and Dwell is never negative;
// memory is bounded (MaxTagsPerZone, the decode cache, a sweep's MaxItems),
// with everything dropped counted.
//
// Sharp edges:
//   - Presence times are observed read times, so decisions lag them: an
//     Enter is reported EnterAfter after its At, a Leave LeaveAfter (plus up
//     to one Tick period) after its At.
//   - Items are identified by GTIN + serial, not by the EPC spelling: the
//     same item read as upper- or lower-case hex, or with SGTIN-198 padded
//     to 50 or 52 digits, or with another filter value, is one item.
//   - Without RSSI (readers reporting 0), zones cannot be compared: an item
//     stays in the first zone it entered until that zone stops reading it.
//   - A sweep's count becomes a count event, and a count is absolute: the
//     hub sets on_hand to it. A sweep that covered only part of the store
//     (one zone, one rail, a handheld walk that was interrupted) undercounts
//     every GTIN that also lies elsewhere, and would set its stock too low.
//     The caller must count only the GTINs the sweep is responsible for:
//     pass them as SweepConfig.Scope (then unseen ones count 0, which is
//     right only if the area holds all their stock), or filter the result.
//     A sweep without a Scope counts what it saw and nothing else: it never
//     reports a 0, so a sold-out GTIN keeps its old stock.
//   - Count lines carry the GTIN as the SKU; the agent must map GTIN to SKU
//     through its catalog before appending them.
package rfid

import "time"

// TagRead is one raw read as a reader's frame decoder reports it.
type TagRead struct {
	// Reader names the device (the agent's device name).
	Reader string
	// EPC is the tag's EPC bank in upper-case hex (e.g. 96 bits = 24 digits).
	EPC string
	// Antenna is the reader port the read came from (1-based); zones are
	// configured per antenna.
	Antenna int
	// RSSI in dBm (negative; closer to 0 is stronger). 0 means unknown.
	RSSI float64
	// At is when the agent received the read.
	At time.Time
}
