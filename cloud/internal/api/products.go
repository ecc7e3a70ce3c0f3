package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
)

// lookupError is why a code shows no product: a 400 (not a valid code) or
// a 404 (valid, but not in the catalog).
type lookupError struct {
	status int
	field  string
	msg    string
}

// findProduct resolves a code the way the edge does: an exact SKU first,
// then the GTIN the code carries (GTIN, element string, Digital Link, EPC).
func (a *API) findProduct(ctx context.Context, code string) (downsync.ProductDoc, downsync.Match, *lookupError, error) {
	c := downsync.ParseCode(code)
	if c.SKU != "" {
		p, ok, err := a.o.Store.ProductBySKU(ctx, c.SKU)
		if err != nil || ok {
			return p, downsync.Match{By: downsync.BySKU, SKU: c.SKU}, nil, err
		}
	}
	if c.GTIN.GTIN != "" && c.Err == nil {
		sku, ok, err := a.o.Store.SKUByGTIN(ctx, c.GTIN.GTIN)
		if err != nil {
			return downsync.ProductDoc{}, downsync.Match{}, nil, err
		}
		if ok {
			p, ok, err := a.o.Store.ProductBySKU(ctx, sku)
			if err != nil || ok {
				m := c.GTIN
				m.SKU = sku
				return p, m, nil, err
			}
		}
	}
	switch {
	case c.Err != nil:
		return downsync.ProductDoc{}, downsync.Match{}, &lookupError{http.StatusBadRequest, "code", c.Err.Error()}, nil
	case c.SKU == "" && c.GTIN.GTIN == "":
		return downsync.ProductDoc{}, downsync.Match{}, &lookupError{http.StatusBadRequest, "code",
			"not a SKU, GTIN, GS1 element string, Digital Link URI or EPC"}, nil
	case c.GTIN.GTIN != "":
		return downsync.ProductDoc{}, downsync.Match{}, &lookupError{http.StatusNotFound, "code",
			fmt.Sprintf("%v: no product has SKU or GTIN %s", downsync.ErrNotFound, c.GTIN.GTIN)}, nil
	}
	return downsync.ProductDoc{}, downsync.Match{}, &lookupError{http.StatusNotFound, "code",
		fmt.Sprintf("%v: no product has SKU %s", downsync.ErrNotFound, c.SKU)}, nil
}

// productView assembles the hub's view of a product: stock online and at
// every store that has any of its SKUs (all of them "nearby": the hub has
// no "here"), its review summary, as of now.
func (a *API) productView(ctx context.Context, code string, p downsync.ProductDoc, m downsync.Match) (downsync.View, error) {
	docs := map[inventory.Key]downsync.StockDoc{}
	var keys []inventory.Key
	var all []store.Stock
	locs := map[string]bool{}
	for _, v := range p.Variants {
		rows, err := a.o.Store.StockForSKU(ctx, v.SKU)
		if err != nil {
			return downsync.View{}, err
		}
		all = append(all, rows...)
		for _, st := range rows {
			keys = append(keys, inventory.Key{SKU: st.SKU, Location: st.Location})
			locs[st.Location] = true
		}
	}
	if len(keys) > 0 {
		ds, err := a.o.Store.StockDocs(ctx, keys)
		if err != nil {
			return downsync.View{}, err
		}
		for _, d := range ds {
			docs[inventory.Key{SKU: d.SKU, Location: d.Location}] = d
		}
	}
	var nearby []string
	for l := range locs {
		if l != a.o.OnlineLocation {
			nearby = append(nearby, l)
		}
	}
	slices.Sort(nearby)
	var rev downsync.ReviewSummary
	sums, err := a.o.Store.ReviewSummaries(ctx, []string{p.ID})
	if err != nil {
		return downsync.View{}, err
	}
	if len(sums) > 0 {
		rev = sums[0]
	}
	a.withholdUnsure(docs, all)
	v := downsync.NewView(code, m, p, m.SKU, rev, "", nearby, a.o.OnlineLocation, func(location, sku string) (downsync.StockDoc, bool) {
		d, ok := docs[inventory.Key{SKU: sku, Location: location}]
		return d, ok
	})
	v.AsOf = a.o.Now().UTC()
	return v, nil
}

// product answers GET /v1/products/{code...}: the same downsync.View as
// the edge, with the hub's stock of every location.
func (a *API) product(w http.ResponseWriter, r *http.Request) {
	code := unmangleURI(r.PathValue("code"), r.URL.RawQuery)
	if code == "" {
		writeErr(w, http.StatusBadRequest, "code", "missing")
		return
	}
	p, m, lerr, err := a.findProduct(r.Context(), code)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if lerr != nil {
		writeErr(w, lerr.status, lerr.field, lerr.msg)
		return
	}
	v, err := a.productView(r.Context(), code, p, m)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// unmangleURI undoes what an unescaped Digital Link URI suffers as a path
// segment: ServeMux cleans "https://" to "https:/" (redirecting there),
// and its query string arrives as the request's. Codes should be escaped
// (https:%2F%2F...), but scanners and people do not always do so.
func unmangleURI(code, rawQuery string) string {
	for _, scheme := range []string{"https:/", "http:/", "HTTPS:/", "HTTP:/"} {
		if rest, ok := strings.CutPrefix(code, scheme); ok {
			if !strings.HasPrefix(rest, "/") {
				code = scheme + "/" + rest
			}
			if rawQuery != "" {
				code += "?" + rawQuery
			}
			break
		}
	}
	return code
}

// ReviewView is one review as moderators see it.
type ReviewView struct {
	ProductID string    `json:"product_id"`
	SKU       string    `json:"sku,omitempty"`
	Store     string    `json:"store"`
	Device    string    `json:"device"`
	Session   string    `json:"session"`
	EventID   string    `json:"event_id"`
	Rating    int       `json:"rating"`
	Title     string    `json:"title,omitempty"`
	Text      string    `json:"text,omitempty"`
	Nickname  string    `json:"nickname,omitempty"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
	// ModeratedBy and ModeratedAt: the moderator who decided the status,
	// and when (absent when the policy did).
	ModeratedBy string     `json:"moderated_by,omitempty"`
	ModeratedAt *time.Time `json:"moderated_at,omitempty"`
}

// productReviews answers GET /v1/products/{id}/reviews for moderators:
// every review of the product, newest first, published and rejected (with
// the reason).
func (a *API) productReviews(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := validSKU(id); err != nil { // review events name products by the SKU rule
		writeErr(w, http.StatusBadRequest, "id", err.Error())
		return
	}
	limit, ok := limitParam(w, r, 100)
	if !ok {
		return
	}
	rs, err := a.o.Store.Reviews(r.Context(), id, limit)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product_id": id, "reviews": views(rs, reviewView)})
}

// withholdUnsure sets to none the online stock among docs whose
// confidence is below Options.OnlineMinConfidence, so the web shop does
// not promise units nobody has counted lately (rows: the positions' stock,
// with their last counts).
func (a *API) withholdUnsure(docs map[inventory.Key]downsync.StockDoc, rows []store.Stock) {
	minRank := a.o.OnlineMinConfidence.Rank()
	if minRank == 0 {
		return
	}
	now := a.o.Now()
	for _, s := range rows {
		k := inventory.Key{SKU: s.SKU, Location: s.Location}
		d, ok := docs[k]
		if s.Location != a.o.OnlineLocation || !ok {
			continue
		}
		if inventory.ConfidenceOf(s.CountMethod, s.CountedAt, now).Rank() < minRank {
			d.Available = 0
			docs[k] = d
		}
	}
}
