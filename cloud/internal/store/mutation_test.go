package store

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/inventory/inventorytest"
)

// Ensure that the property test catches a wrong aggregation: each
// deliberate bug in what the stock applier gathers for a position (the
// rules themselves untouched) makes the books differ from the oracle's
// within a few random logs.
func TestMutation_PropertyCatchesWrongAggregation(t *testing.T) {
	t.Parallel()
	mutations := []struct {
		name   string
		mutate func(c *inventory.Change, deltasAfter *int64)
	}{
		{"only a position's first line per batch", func(c *inventory.Change, _ *int64) {
			if len(c.Moves) > 1 {
				c.Moves = c.Moves[:1]
			}
		}},
		{"a position's lines applied twice", func(c *inventory.Change, _ *int64) {
			c.Moves = append(append([]inventory.Move(nil), c.Moves...), c.Moves...)
		}},
		{"holds ignored", func(c *inventory.Change, _ *int64) { c.Held = 0 }},
		{"deltas after a new count ignored", func(_ *inventory.Change, d *int64) { *d = 0 }},
		{"last line of a batch dropped", func(c *inventory.Change, _ *int64) {
			if len(c.Moves) > 0 {
				c.Moves = c.Moves[:len(c.Moves)-1]
			}
		}},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			s := openSQLite(t)
			s.mutate = m.mutate
			for it := 0; it < 60; it++ {
				rng := rand.New(rand.NewSource(int64(it)))
				opts := inventorytest.Options{Prefix: fmt.Sprintf("m%d-", it), Devices: 3, SKUs: 3, Locations: 2, Events: 80}
				log := inventorytest.Log(rng, opts)
				for _, b := range inventorytest.Batches(rng, inventorytest.Deliveries(rng, log, 0.3), 40) {
					apply(t, s, b...)
				}
				if d := oracleDiff(t, s, bookOf(t, log), opts.Prefix); d != "" {
					t.Logf("caught after %d logs: %s", it+1, d)
					return
				}
			}
			t.Fatal("60 random logs went through with the bug and the books still matched the oracle")
		})
	}
}
