package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that, with the shipped NATS configuration and real agents, a
// store cannot change another store's stock or orders by what it writes in
// an event's body: a count, sale, receipt or adjustment at S2's location
// sent by S1, a release or fulfil of S2's pickup order, a sale or count at
// the online location, are dead-lettered with the reason, and S2's stock
// and order stay as S2 left them. S1's legitimate business with S2 still
// goes through: an order taken at S1 for collection at S2, and a transfer
// naming S2 as its destination. The online location's own credentials are
// not minted by mistake: omni-nats and mint-store.sh refuse it without
// --web-channel.
func TestStoresSpeakOnlyForThemselves(t *testing.T) {
	t.Parallel()
	n := startIsolatedNATS(t)
	h := startHub(t, n.hubURL, "")
	s1 := n.startStoreAgent(t, "S1", "pos-1")
	s2 := n.startStoreAgent(t, "S2", "pos-1")

	mustPost(t, s2.URL, `{"kind":"count","data":{"lines":[{"sku":"SKU-ISO","qty":40}]}}`)
	mustPost(t, s2.URL, reserveBody("ORDER-AT-S2", "S2", "SKU-ISO", 2))
	waitDrained(t, s2, 20*time.Second)

	// The web channel's credentials only on purpose.
	omniNATS := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	if out, err := exec.Command(omniNATS, "mint-store", "--conf-dir", n.dir, "--out", filepath.Join(t.TempDir(), "online.nk"), "online").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "--web-channel") {
		t.Fatalf("omni-nats minted online without --web-channel: %v %s", err, out)
	}
	cmd := exec.Command("bash", filepath.Join(n.dir, "mint-store.sh"), "online")
	cmd.Env = append(os.Environ(), "OMNI_NATS_CONF_DIR="+n.dir, "PATH="+filepath.Dir(omniNATS)+":/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--web-channel") {
		t.Fatalf("mint-store.sh minted online without --web-channel: %v %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(n.dir, "stores.conf")); strings.Contains(string(b), `"STORE_online"`) {
		t.Fatal("a refused minting admitted online")
	}

	attacks := []struct{ what, body string }{
		{"count at S2", `{"kind":"count","data":{"location":"S2","lines":[{"sku":"SKU-ISO","qty":0}]}}`},
		{"sale at S2", `{"kind":"sale","data":{"location":"S2","lines":[{"sku":"SKU-ISO","qty":5}]}}`},
		{"receipt at S2", `{"kind":"receipt","data":{"location":"S2","lines":[{"sku":"SKU-ISO","qty":500}]}}`},
		{"adjust at S2", `{"kind":"adjust","data":{"location":"S2","lines":[{"sku":"SKU-ISO","qty":-40}]}}`},
		{"release of S2's order naming S2", `{"kind":"release","data":{"reservation_id":"ORDER-AT-S2","location":"S2"}}`},
		{"fulfil of S2's order at S2", `{"kind":"fulfil","data":{"reservation_id":"ORDER-AT-S2","location":"S2","lines":[{"sku":"SKU-ISO","qty":2}]}}`},
		{"sale at online", `{"kind":"sale","data":{"location":"online","lines":[{"sku":"SKU-ISO","qty":1}]}}`},
		{"count at online", `{"kind":"count","data":{"location":"online","lines":[{"sku":"SKU-ISO","qty":0}]}}`},
	}
	for _, a := range attacks {
		mustPost(t, s1.URL, a.body)
	}
	// Done at S1's own location, these change nothing of S2's: S1 may not
	// release S2's order even naming itself, and its "fulfil" only takes
	// stock off its own shelf. HQ's pickups board shows the release.
	mustPost(t, s1.URL, `{"kind":"release","data":{"reservation_id":"ORDER-AT-S2","location":"S1"}}`)
	// Legitimate: an order at S1 for collection at S2, a transfer to S2.
	mustPost(t, s1.URL, reserveBody("ORDER-FROM-S1", "S2", "SKU-ISO", 1))
	mustPost(t, s1.URL, `{"kind":"receipt","data":{"lines":[{"sku":"SKU-ISO","qty":3}]}}`)
	mustPost(t, s1.URL, `{"kind":"transfer_out","data":{"to":"S2","lines":[{"sku":"SKU-ISO","qty":1}]}}`)
	waitDrained(t, s1, 20*time.Second)

	var dl struct {
		DeadLetters []struct {
			Kind, Reason, Store string
		} `json:"dead_letters"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return getJSON(t, h.URL+"/v1/deadletters?store=S1", &dl) == http.StatusOK && len(dl.DeadLetters) == len(attacks)
	}, "S1's forged events dead-lettered")
	for _, d := range dl.DeadLetters {
		if !strings.Contains(d.Reason, "speaks only for its own location") || d.Store != "S1" {
			t.Errorf("dead letter %+v", d)
		}
	}
	var stock stockView
	if code := getJSON(t, h.URL+"/v1/inventory/SKU-ISO", &stock); code != http.StatusOK {
		t.Fatalf("inventory: %d", code)
	}
	got := map[string][2]int64{}
	for _, l := range stock.Locations {
		got[l.Location] = [2]int64{l.OnHand, l.Reserved}
	}
	// S2: its count of 40, its own order (2) and S1's order for
	// collection there (1) held. S1: received 3, sent 1 to S2. Online:
	// nothing.
	if _, ok := got["online"]; ok || got["S2"] != [2]int64{40, 3} || got["S1"] != [2]int64{2, 0} {
		t.Fatalf("books after the attacks: %v", got)
	}
	var orders struct {
		Orders []struct {
			ReservationID string `json:"reservation_id"`
			State         string `json:"state"`
		} `json:"orders"`
		Synced bool `json:"synced"`
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		if getJSON(t, s2.URL+"/v1/pickups?state=open", &orders) != http.StatusOK || !orders.Synced {
			return false
		}
		ids := fmt.Sprint(orders.Orders)
		return len(orders.Orders) == 2 && strings.Contains(ids, "ORDER-AT-S2") && strings.Contains(ids, "ORDER-FROM-S1")
	}, "S2's pickup list holds both open orders")
	// HQ's pickups board shows the release S1 sent naming itself, which
	// changed nothing.
	var board struct {
		Pickups []struct {
			ReservationID   string `json:"reservation_id"`
			State           string `json:"state"`
			UncountedCloses []struct {
				Kind, Location string
			} `json:"uncounted_closes"`
		} `json:"pickups"`
	}
	if code := getJSON(t, h.URL+"/v1/pickups?store=S2", &board); code != http.StatusOK {
		t.Fatalf("pickups: %d", code)
	}
	var seen bool
	for _, p := range board.Pickups {
		if p.ReservationID == "ORDER-AT-S2" {
			seen = p.State == "reserved" && len(p.UncountedCloses) == 1 && p.UncountedCloses[0].Kind == "release" && p.UncountedCloses[0].Location == "S1"
		} else if len(p.UncountedCloses) != 0 {
			t.Errorf("order %s has uncounted closes %+v", p.ReservationID, p.UncountedCloses)
		}
	}
	if !seen {
		t.Fatalf("the board does not show S1's release of S2's order as uncounted: %+v", board.Pickups)
	}
}
