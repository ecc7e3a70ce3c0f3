package agent

import (
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/edge/internal/staffq"
)

// openStaff opens the associates' queue (every assist request the mirrors
// append reaches it through its tap on the outbox) and its link to the
// store's other agents over nc: the agent reading the fitting rooms, the
// tills' and the handhelds' all show the whole store's requests, through
// the store's leaf node when it has one, and each goes on alone while NATS
// is away. Requests name where the item to fetch was last swept (places).
// The caller runs both and closes the queue.
func (a *Agent) openStaff(ob *outbox.Outbox, products *productcache.Cache, places staffq.Places, nc *nats.Conn) (*staffq.Queue, *staffq.Link, error) {
	staff, err := staffq.Open(staffq.Options{
		Path: filepath.Join(a.cfg.DataDir, "staff.db"), Device: a.cfg.Device, Outbox: ob, Products: products, Places: places, Now: a.now,
		Logger: a.log.With("component", "staffq"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	link, err := staff.NewLink(staffq.LinkOptions{Conn: nc, Store: a.cfg.Store})
	if err != nil {
		staff.Close()
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	return staff, link, nil
}
