package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// TestStockStatementPlans checks on PostgreSQL every statement that joins
// a batch's arrays to a table, as the hub runs them for sales, counts,
// reservations and their release, against 12,000 stock positions and
// 12,000 open reservations: none may read a whole table of 10,000 rows
// or more under the generic plan, analyzed or before statistics (see
// plan_guard_test.go). The ledger's reads have their own guards
// (ledger_plan_test.go).
func TestStockStatementPlans(t *testing.T) {
	s := openPostgres(t)
	const skus, locs = 500, 24
	wall := seedPositions(t, s, skus, locs)
	ctx := context.Background()
	web := newDevice(inventory.DefaultOnline, "shop", 1)
	loc := func(i int) string { return fmt.Sprintf("S%02d", i%locs) }
	sku := func(i int) string { return fmt.Sprintf("SKU-%03d", i%skus) }
	const held = 12_000
	fillWith(t, s, held, 3_000, func(i int) events.Envelope {
		wall++
		return web.ev(wall, events.KindReserve, rmove(fmt.Sprintf("o-%d", i), loc(i/skus), line(sku(i), 1)))
	})
	big := bigTables(t, s, "")
	if !big["stock"] || !big["reservations"] {
		t.Fatalf("the stock tables were not filled: %v", big)
	}
	guardPlans(t, s, []string{"unnest"}, big, func(t *testing.T, c int) {
		pos := newDevice("S03", fmt.Sprintf("pos-%d", c), 1)
		stocktake := newDevice("S04", fmt.Sprintf("rfid-%d", c), 1)
		var envs []events.Envelope
		for i := range 50 {
			wall++
			envs = append(envs, pos.ev(wall, events.KindSale, sale("S03", line(sku(i*7), 1), line(sku(i*7+1), 2))))
		}
		var counted []events.Line
		for i := range 20 {
			counted = append(counted, line(sku(i*11), 90))
		}
		wall++
		envs = append(envs, stocktake.ev(wall, events.KindCount, sale("S04", counted...)))
		for i := range 20 {
			wall++
			envs = append(envs, web.ev(wall, events.KindReserve, rmove(fmt.Sprintf("n-%d-%d", c, i), loc(i), line(sku(i*13), 1))))
			wall++
			old := c*1000 + i*37
			envs = append(envs, web.ev(wall, events.KindRelease, rmove(fmt.Sprintf("o-%d", old), loc(old/skus))))
		}
		items := itemsOf(envs...)
		if res, err := s.ApplyBatch(ctx, items); err != nil || res.Applied != len(items) {
			t.Fatalf("apply: %+v %v", res, err)
		}
	})
}
