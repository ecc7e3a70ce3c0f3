package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/automation/runner"
	"github.com/omnisync/omnisync/cloud/internal/egress"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// The automation runner of this replica. Consent comes from the customer
// books (storeConsent), asked when a message is sent, not when it was
// scheduled; abandoned carts come from the cart service; back_in_stock
// reaches the customers who hold the item in a cart or whom the web shop
// saw view it or ask to be told, within the store's InterestWindow
// (Store.InterestedIn; POST /v1/customers/{id}/interests).
// A hub given no consent checker (tests) uses noDecisions: nothing is
// allowed.

// noDecisions is the consent of a hub that keeps no customer decisions:
// consent is opt-in, so the answer is no.
type noDecisions struct{}

func (noDecisions) May(context.Context, string, string, string, time.Time) (bool, error) {
	return false, nil
}

// replicaOwner names this replica in leases (the automation jobs', the
// stream deletions'): host, process and a random suffix, unique even for
// two replicas in one container image.
func replicaOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// newAutomation builds the runner.
func newAutomation(st *store.Store, nc *nats.Conn, consent runner.ConsentChecker, facts automation.Facts, webhooks egress.Policy, log *slog.Logger) (*runner.Runner, error) {
	if consent == nil {
		consent = noDecisions{}
	}
	return runner.New(runner.Config{
		Queue: st, Consent: consent, Facts: facts, NATS: nc, Logger: log, Stock: st, Assists: st, Interest: st, Egress: webhooks,
		Owner: replicaOwner(),
	})
}

// changedSKUs lists the SKUs of changed positions once each, for the
// back-in-stock trigger.
func changedSKUs(keys []inventory.Key) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k.SKU] {
			seen[k.SKU] = true
			out = append(out, k.SKU)
		}
	}
	return out
}
