package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices/profile"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
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
	// Area names what is being swept (a rack, a room, the store).
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
}

// StartSweep starts a stock sweep on an RFID reader: every distinct item it
// reads until EndSweep is counted once.
func (m *Manager) StartSweep(name string, req SweepRequest) error {
	d, err := m.rfidDevice(name)
	if err != nil {
		return err
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
	sw := d.sweep
	d.sweep = nil
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
