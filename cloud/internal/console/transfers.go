package console

import (
	"net/http"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/transfers"
)

type transfersPage struct {
	frame
	Overdue string
	Rows    []transfers.Transfer
}

// transfers lists transfers (?state=), a store manager's from or to her
// stores only.
func (c *Console) transfers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := transfersPage{frame: c.frame(r, "Transfers"), Overdue: c.overdue().String()}
	state := r.URL.Query().Get("state")
	if state != "" && !transfers.ValidState(state) {
		d.Err = "Show in_transit, partial, overdue or received transfers."
		c.renderExtra(w, http.StatusBadRequest, "transfers", d)
		return
	}
	stores, limited := auth.From(ctx).Stores()
	rows, err := c.o.Store.Transfers(ctx, store.TransferQuery{State: state, Locations: stores, Limited: limited, Now: c.o.Now(), Overdue: c.overdue()})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d.Rows = rows
	c.renderExtra(w, http.StatusOK, "transfers", d)
}
