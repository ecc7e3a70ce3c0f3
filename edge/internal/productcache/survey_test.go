package productcache

import (
	"encoding/json"
	"testing"

	"github.com/omnisync/omnisync/shared/downsync"
)

func survey(d downsync.SurveyDoc) Update {
	b, _ := json.Marshal(d)
	return Update{Key: downsync.SurveyKey(d.ID), Value: b}
}

// Ensure that survey definitions are kept, the newest version winning,
// that the active one offered at a moment is found (offline too, after a
// reopen), that an inactive or unreadable one is not offered, and that a
// delete marker removes one.
func TestApply_Surveys(t *testing.T) {
	o := testOptions(t)
	c := mustOpen(t, o)
	pp := downsync.SurveyDoc{ID: "pp", Kind: "nps", Question: "Recommend us?", Offer: downsync.OfferPostPurchase, Active: true, Version: 5}
	old := pp
	old.Question, old.Version = "Old question", 4
	room := downsync.SurveyDoc{ID: "room", Kind: "csat", Question: "Your visit?", Offer: downsync.OfferFittingRoom, Active: false, Version: 1}
	mustApply(t, c, 1, true, survey(pp), survey(old), survey(room),
		Update{Key: downsync.SurveyKey("bad"), Value: []byte(`{"id":"bad","kind":"stars","question":"?"}`)})
	if d, ok := c.Survey(downsync.OfferPostPurchase); !ok || d.Question != "Recommend us?" {
		t.Fatalf("post-purchase %+v %v", d, ok)
	}
	if _, ok := c.Survey(downsync.OfferFittingRoom); ok {
		t.Fatal("an inactive survey offered")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = mustOpen(t, o)
	room.Active, room.Version = true, 2
	mustApply(t, c, 2, true, survey(room), deleted(downsync.SurveyKey("pp")))
	if d, ok := c.Survey(downsync.OfferFittingRoom); !ok || d.ID != "room" {
		t.Fatalf("fitting room after reopen %+v %v", d, ok)
	}
	if _, ok := c.Survey(downsync.OfferPostPurchase); ok {
		t.Fatal("a deleted survey offered")
	}
}
