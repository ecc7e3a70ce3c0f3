// Package custtest plays the hub's side of the customer protocol
// (shared/syncproto) for tests of the agent, on a real NATS server with
// the chain's accounts, as cloud/internal/custsync does (which edge
// packages cannot import). Only tests import it.
package custtest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/natsacct/natsaccttest"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Hub plays the hub's side of the customer protocol on a real NATS
// server with the chain's accounts, as cloud/internal/custsync does (which
// edge packages cannot import): it answers card, match and receipt
// requests for the store of the subject, and writes erasure notices into
// each store's keys of the erasure bucket. Its "normalisation" is exact
// strings, upper-cased: enough to tell a match from a miss.
type Hub struct {
	t testing.TB
	// W is the server with the chain's accounts; NC the hub's connection.
	W  *natsaccttest.World
	NC *nats.Conn
	js jetstream.JetStream

	mu       sync.Mutex
	cards    map[string]syncproto.Card // "store|type:VALUE" -> card
	erased   map[string][]string       // erasure id -> "type:VALUE" it names
	receipts []string                  // "store/device/erasure"
	asked    int                       // card requests answered
	down     bool                      // answer every request "unavailable"
}

// Norm is the stand-in's normalisation of an identifier.
func Norm(t, v string) string { return t + ":" + strings.ToUpper(strings.TrimSpace(v)) }

// Start starts a server with an account per store and the stand-in.
func Start(t testing.TB, stores ...string) *Hub {
	t.Helper()
	w := natsaccttest.Start(t, stores...)
	h := &Hub{t: t, W: w, NC: w.Hub(t), cards: map[string]syncproto.Card{}, erased: map[string][]string{}}
	h.js = natsaccttest.DownJS(t, h.NC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := downsync.EnsureErasureBucket(ctx, h.js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.NC.QueueSubscribe(subjects.CustAll, "q", h.serve); err != nil {
		t.Fatal(err)
	}
	_ = h.NC.Flush()
	return h
}

func (h *Hub) serve(m *nats.Msg) {
	store, op, _ := subjects.ParseCust(m.Subject)
	h.mu.Lock()
	defer h.mu.Unlock()
	reply := func(v any) { b, _ := json.Marshal(v); _ = m.Respond(b) }
	if h.down {
		reply(syncproto.Reply{Error: "down", Code: syncproto.CodeUnavailable})
		return
	}
	switch op {
	case subjects.CustCard:
		var r syncproto.CardRequest
		if err := syncproto.Decode(m.Data, &r); err != nil {
			reply(syncproto.CardReply{Reply: syncproto.Reply{Error: err.Error(), Code: syncproto.CodeInvalid}})
			return
		}
		h.asked++
		for t, v := range r.Identifiers {
			if c, ok := h.cards[store+"|"+Norm(t, v)]; ok {
				c.AsOfMS = time.Now().UnixMilli()
				reply(syncproto.CardReply{Card: &c})
				return
			}
		}
		reply(syncproto.CardReply{Reply: syncproto.Reply{Error: "not found", Code: syncproto.CodeNotFound}})
	case subjects.CustMatch:
		var r syncproto.MatchRequest
		if err := syncproto.Decode(m.Data, &r); err != nil {
			reply(syncproto.MatchReply{Reply: syncproto.Reply{Error: err.Error(), Code: syncproto.CodeInvalid}})
			return
		}
		names, ok := h.erased[r.Erasure]
		if !ok {
			reply(syncproto.MatchReply{Reply: syncproto.Reply{Error: "not found", Code: syncproto.CodeNotFound}})
			return
		}
		out := []int{}
		for i, id := range r.Identifiers {
			for _, n := range names {
				typ, val, _ := strings.Cut(n, ":")
				if (id.Type == typ || id.Type == "") && Norm(typ, id.Value) == n || id.Type == "" && strings.EqualFold(strings.TrimSpace(id.Value), val) {
					out = append(out, i)
					break
				}
			}
		}
		reply(syncproto.MatchReply{Matches: out})
	case subjects.CustReceipt:
		var r syncproto.Receipt
		if err := syncproto.Decode(m.Data, &r); err != nil {
			reply(syncproto.Reply{Error: err.Error(), Code: syncproto.CodeInvalid})
			return
		}
		h.receipts = append(h.receipts, store+"/"+r.Device+"/"+r.Erasure)
		reply(syncproto.Reply{})
	}
}

// Card makes c the card of the shopper with ids ("type:value") at store.
func (h *Hub) Card(store string, c syncproto.Card, ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		t, v, _ := strings.Cut(id, ":")
		h.cards[store+"|"+Norm(t, v)] = c
	}
}

// Erase erases the customer named by ids ("type:value"): the cards go,
// and a notice is written for each store.
func (h *Hub) Erase(id, customer string, stores []string, ids ...string) {
	h.t.Helper()
	h.mu.Lock()
	for _, raw := range ids {
		t, v, _ := strings.Cut(raw, ":")
		h.erased[id] = append(h.erased[id], Norm(t, v))
		for k := range h.cards {
			if strings.HasSuffix(k, "|"+Norm(t, v)) {
				delete(h.cards, k)
			}
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range stores {
		b, _ := json.Marshal(syncproto.ErasureNotice{Erasure: id, Customer: customer, Store: s, RequestedMS: time.Now().UnixMilli()})
		if _, err := h.js.Publish(ctx, downsync.ErasureSubject(downsync.ErasureKey(s, id)), b); err != nil {
			h.t.Fatal(err)
		}
	}
}

// Receipts lists the receipts, "store/device/erasure".
func (h *Hub) Receipts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.receipts...)
}

// SetDown makes every answer "unavailable" (a hub that cannot serve).
func (h *Hub) SetDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// DropCard stops giving the card of id ("type:value") at store.
func (h *Hub) DropCard(store, id string) {
	t, v, _ := strings.Cut(id, ":")
	h.mu.Lock()
	delete(h.cards, store+"|"+Norm(t, v))
	h.mu.Unlock()
}

// Erased registers erasure id as naming ids ("type:value") without
// publishing a notice.
func (h *Hub) Erased(id string, ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, raw := range ids {
		t, v, _ := strings.Cut(raw, ":")
		h.erased[id] = append(h.erased[id], Norm(t, v))
	}
}
