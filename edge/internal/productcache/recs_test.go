package productcache

import (
	"encoding/json"
	"testing"

	"github.com/omnisync/omnisync/shared/downsync"
)

func recs(d downsync.RecsDoc) Update {
	b, _ := json.Marshal(d)
	return Update{Key: downsync.RecsKey(d.ProductID), Value: b}
}

// Ensure that a product's complements are kept, the newest version
// winning, survive a reopen (offline, the mirror uses the last lists), and
// go with a delete marker.
func TestApply_Complements(t *testing.T) {
	o := testOptions(t)
	c := mustOpen(t, o)
	v2 := downsync.RecsDoc{ProductID: "P1", Version: 2, Complements: []downsync.Complement{{ProductID: "P2", Reason: "completes the look", Score: 4}}}
	v1 := downsync.RecsDoc{ProductID: "P1", Version: 1, Complements: []downsync.Complement{{ProductID: "P3", Reason: "often tried with"}}}
	mustApply(t, c, 1, true, recs(v2), recs(v1))
	if d, ok := c.Complements("P1"); !ok || d.Version != 2 || len(d.Complements) != 1 || d.Complements[0].ProductID != "P2" {
		t.Fatalf("complements %+v %v", d, ok)
	}
	if _, ok := c.Complements("P9"); ok {
		t.Fatal("complements of an unknown product")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = mustOpen(t, o)
	if d, ok := c.Complements("P1"); !ok || d.Version != 2 {
		t.Fatalf("after reopen: %+v %v", d, ok)
	}
	mustApply(t, c, 2, true, deleted(downsync.RecsKey("P1")))
	if _, ok := c.Complements("P1"); ok {
		t.Fatal("complements kept after their delete marker")
	}
	checkCounts(t, c)
}
