package rfid

import (
	"encoding/json"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// SweepReason is the reason carried by count events made from sweeps.
const SweepReason = "rfid sweep"

// PresenceBody is the body of enter and leave events.
type PresenceBody struct {
	Zone   string `json:"zone"`
	EPC    string `json:"epc"`
	GTIN   string `json:"gtin"`
	Serial string `json:"serial"`
	// DwellMS is set on leave only (0 is a valid dwell).
	DwellMS *int64 `json:"dwell_ms,omitempty"`
	Reader  string `json:"reader"`
	Antenna int    `json:"antenna,omitempty"`
	// RSSI is the peak RSSI in dBm, omitted when unknown.
	RSSI float64 `json:"rssi,omitempty"`
	// At is the observed time (see Presence): the event's clock stamp is
	// later, by the smoothing delay.
	At    time.Time `json:"at"`
	Cause Cause     `json:"cause,omitempty"`
	// Visit names the shopper's visit to the zone (events.FittingRoom);
	// the agent fills it.
	Visit string `json:"visit,omitempty"`
}

// Event returns the kind and body of the event recording p.
func (p Presence) Event() (events.Kind, PresenceBody) {
	b := PresenceBody{Zone: p.Zone, EPC: p.EPC, GTIN: p.GTIN, Serial: p.Serial,
		Reader: p.Reader, Antenna: p.Antenna, RSSI: p.RSSI, At: p.At}
	if p.Change != Leave {
		return events.KindEnter, b
	}
	ms := p.Dwell.Milliseconds()
	b.DwellMS, b.Cause = &ms, p.Cause
	return events.KindLeave, b
}

// Draft returns p as an event draft for the outbox.
func (p Presence) Draft() (events.Draft, error) {
	k, b := p.Event()
	data, err := json.Marshal(b)
	if err != nil {
		return events.Draft{}, err
	}
	return events.Draft{Kind: k, Data: data}, nil
}

// CountEvents returns the count event bodies for the sweep, each of at most
// events.MaxLines lines (a count is per SKU, so splitting changes nothing),
// with the GTIN standing in for the SKU until the agent maps it through its
// catalog. location "" lets the agent fill in its store. Each is stamped
// method rfid_sweep and snapshot_at the sweep's start: the hub adds to the
// counts what was sold or received while the sweep ran. It refuses a
// Truncated sweep (ErrSweepTruncated) and returns nothing when nothing was
// counted.
//
// A count is absolute: see the package documentation before sending one
// for a sweep that did not cover every item of its GTINs.
func (r SweepResult) CountEvents(location string) (events.Kind, []events.StockMove, error) {
	if r.Truncated {
		return events.KindCount, nil, ErrSweepTruncated
	}
	var out []events.StockMove
	for start := 0; start < len(r.Counts); start += events.MaxLines {
		end := min(start+events.MaxLines, len(r.Counts))
		m := events.StockMove{Location: location, Reason: SweepReason, Method: events.CountRFIDSweep,
			SnapshotAt: r.Started.UTC(), Lines: make([]events.Line, 0, end-start)}
		for _, c := range r.Counts[start:end] {
			m.Lines = append(m.Lines, events.Line{SKU: c.GTIN, Qty: c.Qty})
		}
		out = append(out, m)
	}
	return events.KindCount, out, nil
}

// CountDrafts is CountEvents as event drafts for the outbox.
func (r SweepResult) CountDrafts(location string) ([]events.Draft, error) {
	k, moves, err := r.CountEvents(location)
	if err != nil {
		return nil, err
	}
	out := make([]events.Draft, 0, len(moves))
	for _, m := range moves {
		data, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, events.Draft{Kind: k, Data: data})
	}
	return out, nil
}
