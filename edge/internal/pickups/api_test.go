package pickups

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/downsync"
)

// Ensure that GET /v1/pickups lists the cached orders newest first,
// filtered and limited, that GET /v1/pickups/{id} answers one, and that bad
// parameters are answered 400 with the field named.
func TestAPI(t *testing.T) {
	c := mustOpen(t, filepath.Join(t.TempDir(), "pickups.db"), "S1")
	mux := http.NewServeMux()
	NewAPI(c, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var never List
	if code := getJSON(t, srv.URL+"/v1/pickups", &never); code != http.StatusOK || never.AsOf != nil || never.Synced ||
		never.Orders == nil || len(never.Orders) != 0 || never.Store != "S1" {
		t.Errorf("empty cache: %d %+v", code, never)
	}

	docs := map[string]downsync.PickupDoc{}
	for i, d := range []downsync.PickupDoc{
		pickupAt("R1", open, 1000), pickupAt("R2", collected, 3000), pickupAt("R3", open, 2000),
		pickupAt("R4", cancelled, 4000), pickupAt("web/5", open, 5000),
	} {
		d.Version = int64(i + 1)
		docs[d.ReservationID] = d
	}
	synced := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := c.replace(docs, synced); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		query string
		code  int
		ids   string // listed, in order
		field string
	}{
		{"", 200, "web/5,R4,R2,R3,R1", ""},
		{"?state=open", 200, "web/5,R3,R1", ""},
		{"?state=open&limit=2", 200, "web/5,R3", ""},
		{"?state=cancelled", 200, "R4", ""},
		{"?limit=1", 200, "web/5", ""},
		{"?state=opened", 400, "", "state"},
		{"?limit=0", 400, "", "limit"},
		{"?limit=x", 400, "", "limit"},
		{"?limit=1001", 400, "", "limit"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var body struct {
				List
				Error string `json:"error"`
				Field string `json:"field"`
			}
			code := getJSON(t, srv.URL+"/v1/pickups"+tc.query, &body)
			var ids []string
			for _, d := range body.Orders {
				ids = append(ids, d.ReservationID)
			}
			if code != tc.code || strings.Join(ids, ",") != tc.ids || body.Field != tc.field {
				t.Errorf("%d %q field %q (%s), want %d %q field %q", code, ids, body.Field, body.Error, tc.code, tc.ids, tc.field)
			}
			if code == 200 && (body.AsOf == nil || !body.AsOf.Equal(synced) || body.Store != "S1") {
				t.Errorf("as_of %v store %q, want %v S1", body.AsOf, body.Store, synced)
			}
		})
	}

	var d downsync.PickupDoc
	if code := getJSON(t, srv.URL+"/v1/pickups/web%2F5", &d); code != 200 || d.ReservationID != "web/5" || d.Version != 5 || len(d.Lines) != 1 {
		t.Errorf("get web/5: %d %+v", code, d)
	}
	var e map[string]string
	if code := getJSON(t, srv.URL+"/v1/pickups/R9", &e); code != 404 || e["error"] == "" {
		t.Errorf("get R9: %d %v", code, e)
	}
}

func pickupAt(id, state string, reservedMS int64) downsync.PickupDoc {
	d := order("S1", id, state, 1)
	d.ReservedMS = reservedMS
	return d
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Errorf("%s: %v", url, err)
	}
	return resp.StatusCode
}
