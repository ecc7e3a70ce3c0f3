package downpub

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that products tried together reach the bucket as each other's
// complements, and that a product without history gets a list too (its
// category and brand).
func TestPublishesComplements(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, e.st, "h1")
	vs := catalog.Sample(7, 20)
	if _, err := e.st.ImportCatalog(context.Background(), vs, store.ImportOptions{Source: "test", Mode: catalog.AllOrNothing}); err != nil {
		t.Fatal(err)
	}
	a := vs[0]
	var b catalog.Variant
	for _, v := range vs {
		if v.ProductID != a.ProductID {
			b = v
			break
		}
	}
	for _, v := range []catalog.Variant{a, b} {
		res := e.apply(t, events.KindEnter, events.FittingRoom{Zone: "room-1", EPC: "3074257BF7194E4000001A85", GTIN: v.GTINs[0], Visit: "room-1-1"})
		p.Recs(res.RecProducts)
	}
	recsOf := func(id string) (downsync.RecsDoc, bool) {
		ent, err := e.kv.Get(context.Background(), downsync.RecsKey(id))
		if err != nil {
			return downsync.RecsDoc{}, false
		}
		var d downsync.RecsDoc
		return d, json.Unmarshal(ent.Value(), &d) == nil
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		d, ok := recsOf(a.ProductID)
		return ok && len(d.Complements) > 0 && d.Complements[0].ProductID == b.ProductID && d.Complements[0].Score == 1
	}, "complements published")
	// The sweep publishes every product's list: the others have none of
	// their own but get their category and brand.
	last := vs[len(vs)-1]
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, ok := recsOf(last.ProductID)
		return ok
	}, "a product without history has a list")
}
