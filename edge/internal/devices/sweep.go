package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices/profile"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/events"
)

// Errors of the sweep API.
var (
	ErrNoDevice   = errors.New("devices: no such device")
	ErrNotRFID    = errors.New("devices: not an RFID reader")
	ErrSweeping   = errors.New("devices: a sweep is already running on this reader")
	ErrNoSweep    = errors.New("devices: no sweep is running on this reader")
	ErrBadRequest = errors.New("devices: bad request")
)

// SweepRequest is the body of POST /v1/devices/{name}/sweep.
type SweepRequest struct {
	// Action is "start" or "end".
	Action string `json:"action"`
	// Area names what is being swept (a rack, the stockroom, the store;
	// at most 64 bytes). With an area, what the sweep reads outside the
	// fitting rooms becomes the items' location (Options.Places).
	Area string `json:"area,omitempty"`
	// Scope lists the GTINs the sweep is responsible for: those not seen
	// are counted 0. Without it only GTINs seen are counted, so a partial
	// sweep never zeroes stock it did not look at.
	Scope []string `json:"scope,omitempty"`
	// Location whose stock the counts set (default: the agent's store).
	Location string `json:"location,omitempty"`
}

// SweepAnswer is what ending a sweep returns.
type SweepAnswer struct {
	Area       string            `json:"area,omitempty"`
	Started    time.Time         `json:"started"`
	Ended      time.Time         `json:"ended"`
	Items      int               `json:"items"`
	OutOfScope int               `json:"out_of_scope"`
	Reads      uint64            `json:"reads"`
	Counts     []rfid.GTINCount  `json:"counts"`
	Rejects    map[string]uint64 `json:"rejects,omitempty"`
	// Events is how many count events were recorded.
	Events int `json:"events"`
	// Located is how many GTINs got the sweep's area as their location.
	Located int `json:"located,omitempty"`
}

// maxSweptGTINs bounds the GTINs one sweep remembers for the items'
// locations: far above a store's assortment.
const maxSweptGTINs = 100_000

// sightings collects, per GTIN, when a sweep last read it outside the
// fitting rooms and the first few serials it read.
type sightings struct {
	byGTIN map[string]*whereabouts.Sighting
	order  []string
}

func newSightings() *sightings { return &sightings{byGTIN: map[string]*whereabouts.Sighting{}} }

func (s *sightings) list() []whereabouts.Sighting {
	out := make([]whereabouts.Sighting, 0, len(s.order))
	for _, g := range s.order {
		out = append(out, *s.byGTIN[g])
	}
	return out
}

// sight adds the sweep's reads outside the fitting rooms' antennas: an
// item read in a room is with a shopper, and its room is not where to
// fetch another one from. d.mu is held.
func (d *device) sight(reads []rfid.TagRead) {
	for _, r := range reads {
		if d.roomAntennas[r.Antenna] {
			continue
		}
		it, err := d.decoder.Decode(r.EPC)
		if err != nil {
			continue // counted by the sweep
		}
		s := d.swept.byGTIN[it.GTIN]
		if s == nil {
			if len(d.swept.order) >= maxSweptGTINs {
				continue
			}
			s = &whereabouts.Sighting{GTIN: it.GTIN}
			d.swept.byGTIN[it.GTIN] = s
			d.swept.order = append(d.swept.order, it.GTIN)
		}
		if r.At.After(s.At) {
			s.At = r.At
		}
		if it.Serial != "" && len(s.Serials) < whereabouts.MaxUnits && !slices.Contains(s.Serials, it.Serial) {
			s.Serials = append(s.Serials, it.Serial)
		}
	}
}

// StartSweep starts a stock sweep on an RFID reader: every distinct item it
// reads until EndSweep is counted once.
func (m *Manager) StartSweep(name string, req SweepRequest) error {
	d, err := m.rfidDevice(name)
	if err != nil {
		return err
	}
	if req.Area != "" {
		if err := whereabouts.ValidArea(req.Area); err != nil {
			return fmt.Errorf("%w: area: %w", ErrBadRequest, err)
		}
	}
	sw, err := rfid.NewSweep(rfid.SweepConfig{Area: req.Area, Scope: req.Scope, Decoder: d.decoder}, m.o.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sweep != nil {
		return ErrSweeping
	}
	d.sweep = sw
	d.swept = nil
	if m.o.Places != nil && req.Area != "" {
		d.swept = newSightings()
	}
	return nil
}

// EndSweep ends the reader's sweep and records its counts as count events
// for location (absolute quantities: see SweepRequest.Scope), one line per
// SKU. A GTIN the agent's catalog does not know (yet) is counted under the
// GTIN itself, so the count is kept and HQ can see what was unknown.
func (m *Manager) EndSweep(ctx context.Context, name, location string) (SweepAnswer, error) {
	d, err := m.rfidDevice(name)
	if err != nil {
		return SweepAnswer{}, err
	}
	d.mu.Lock()
	sw, seen := d.sweep, d.swept
	d.sweep, d.swept = nil, nil
	d.mu.Unlock()
	if sw == nil {
		return SweepAnswer{}, ErrNoSweep
	}
	res, err := sw.End(m.o.Now())
	if err != nil {
		return SweepAnswer{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	ans := SweepAnswer{Area: res.Area, Started: res.Started.UTC(), Ended: res.Ended.UTC(), Items: res.Items,
		OutOfScope: res.OutOfScope, Reads: res.Reads, Counts: res.Counts}
	if len(res.Rejects) > 0 {
		ans.Rejects = map[string]uint64{}
		for k, v := range res.Rejects {
			ans.Rejects[string(k)] = v
		}
	}
	if seen != nil && len(seen.order) > 0 {
		// Where the items are is a help to the associates, the counts
		// are stock: a location not kept never costs the counts.
		if err := m.o.Places.Swept(ctx, res.Area, seen.list()); err != nil {
			m.log.Warn("sweep locations not recorded", "device", name, "area", res.Area, "err", err)
		} else {
			ans.Located = len(seen.order)
		}
	}
	if len(res.Counts) == 0 {
		return ans, nil
	}
	res.Counts = bySKU(res.Counts, m.o.Catalog)
	drafts, err := res.CountDrafts(location)
	if err != nil {
		return ans, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := m.o.Sink.Append(ctx, drafts); err != nil {
		return ans, err
	}
	ans.Events = len(drafts)
	return ans, nil
}

func (m *Manager) rfidDevice(name string) (*device, error) {
	for _, d := range m.devs {
		if d.cfg.Name == name {
			if d.prof.Meaning != profile.MeaningRFID {
				return nil, fmt.Errorf("%w: %s uses %s", ErrNotRFID, name, d.prof.Name)
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoDevice, name)
}

// SweepHandler serves POST /v1/devices/{name}/sweep; store is the default
// location of the counts.
func (m *Manager) SweepHandler(store string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req SweepRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeErr(w, http.StatusBadRequest, "", "body must be a JSON object: "+err.Error())
			return
		}
		if req.Location == "" {
			req.Location = store
		}
		if err := events.ValidToken(req.Location); err != nil {
			writeErr(w, http.StatusBadRequest, "location", err.Error())
			return
		}
		name := r.PathValue("name")
		switch req.Action {
		case "start":
			err = m.StartSweep(name, req)
			if err == nil {
				writeJSON(w, http.StatusOK, map[string]string{"status": "sweeping", "device": name})
				return
			}
		case "end":
			var ans SweepAnswer
			ans, err = m.EndSweep(r.Context(), name, req.Location)
			if err == nil {
				writeJSON(w, http.StatusOK, ans)
				return
			}
		default:
			writeErr(w, http.StatusBadRequest, "action", `must be "start" or "end"`)
			return
		}
		switch {
		case errors.Is(err, ErrNoDevice):
			writeErr(w, http.StatusNotFound, "name", err.Error())
		case errors.Is(err, ErrNotRFID), errors.Is(err, ErrSweeping), errors.Is(err, ErrNoSweep):
			writeErr(w, http.StatusConflict, "", err.Error())
		case errors.Is(err, ErrBadRequest):
			writeErr(w, http.StatusBadRequest, "", err.Error())
		default:
			writeErr(w, http.StatusInternalServerError, "", err.Error())
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, code, body)
}

// bySKU turns per-GTIN counts into per-SKU counts: GTINs of one SKU (a
// variant may have several) are added up, since one count event may hold
// one line per SKU.
func bySKU(counts []rfid.GTINCount, cat Catalog) []rfid.GTINCount {
	if cat == nil {
		return counts
	}
	idx := map[string]int{}
	out := make([]rfid.GTINCount, 0, len(counts))
	for _, c := range counts {
		key := c.GTIN
		if ref, ok := cat.ProductForGTIN(c.GTIN); ok {
			key = ref.SKU
		}
		if i, ok := idx[key]; ok {
			out[i].Qty += c.Qty
			continue
		}
		idx[key] = len(out)
		out = append(out, rfid.GTINCount{GTIN: key, Qty: c.Qty})
	}
	return out
}
