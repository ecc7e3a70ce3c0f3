package api

import (
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// DefaultVarianceWindow is how far back GET /v1/counts/variances looks
// without a since.
const DefaultVarianceWindow = 7 * 24 * time.Hour

// CountVariance is one count line's record in GET /v1/counts/variances.
type CountVariance struct {
	EventID    string    `json:"event_id"`
	Line       int       `json:"line"`
	SKU        string    `json:"sku"`
	Location   string    `json:"location"`
	Store      string    `json:"store"`
	Device     string    `json:"device"`
	Method     string    `json:"method,omitempty"`
	SnapshotAt time.Time `json:"snapshot_at"`
	AppliedAt  time.Time `json:"applied_at"`
	Expected   int64     `json:"expected"`
	Counted    int64     `json:"counted"`
	Variance   int64     `json:"variance"`
	// UnitPrice and Value are in minor currency units (UnitPrice 0: the
	// SKU had no catalog price).
	UnitPrice int64  `json:"unit_price"`
	Value     int64  `json:"value"`
	Currency  string `json:"currency,omitempty"`
}

// VarianceTotals sums the records of an answer.
type VarianceTotals struct {
	Counts     int   `json:"counts"`
	Lines      int   `json:"lines"`
	Short      int64 `json:"units_short"`
	Over       int64 `json:"units_over"`
	Net        int64 `json:"units_net"`
	ShortValue int64 `json:"value_short"`
	OverValue  int64 `json:"value_over"`
	NetValue   int64 `json:"value_net"`
}

// Variances is the answer of GET /v1/counts/variances.
type Variances struct {
	Since  time.Time       `json:"since"`
	Items  []CountVariance `json:"items"`
	Totals VarianceTotals  `json:"totals"`
}

// countVariances answers GET /v1/counts/variances?store=&since=: the
// variance of every count line since (default the last 7 days), newest
// first, with totals; a store manager's only for their stores.
func (a *API) countVariances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := store.ParseSince(q.Get("since"), a.o.Now(), DefaultVarianceWindow)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "since", err.Error())
		return
	}
	vq := store.VarianceQuery{Since: since}
	p := auth.From(r.Context())
	if st := q.Get("store"); st != "" {
		if err := events.ValidToken(st); err != nil {
			writeErr(w, http.StatusBadRequest, "store", err.Error())
			return
		}
		if !p.MayStore(st) {
			writeErr(w, http.StatusForbidden, "store", "not one of your stores")
			return
		}
		vq.Locations = []string{st}
	} else if stores, limited := p.Stores(); limited {
		vq.Locations = stores
	}
	vs, err := a.o.Store.CountVariances(r.Context(), vq)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := Variances{Since: since.UTC(), Items: make([]CountVariance, 0, len(vs))}
	for _, v := range vs {
		out.Items = append(out.Items, CountVariance{EventID: v.EventID, Line: v.Line, SKU: v.SKU, Location: v.Location,
			Store: v.Store, Device: v.Device, Method: v.Method, SnapshotAt: v.SnapshotAt, AppliedAt: v.AppliedAt,
			Expected: v.Expected, Counted: v.Counted, Variance: v.Variance, UnitPrice: v.UnitPrice, Value: v.Value, Currency: v.Currency})
	}
	t := store.SumVariances(vs)
	out.Totals = VarianceTotals{Counts: t.Counts, Lines: t.Lines, Short: t.Short, Over: t.Over, Net: t.Net,
		ShortValue: t.ShortValue, OverValue: t.OverValue, NetValue: t.NetValue}
	writeJSON(w, http.StatusOK, out)
}
