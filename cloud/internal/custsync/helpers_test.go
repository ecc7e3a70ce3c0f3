package custsync

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/natsacct/natsaccttest"
	"github.com/omnisync/omnisync/shared/testkit"
)

// mem is an in-memory customer store: the cards of customers and the
// stores they identified at, erasures per store, receipts.
type mem struct {
	mu       sync.Mutex
	h        *identity.Hasher
	cards    map[string]Card            // identifier "type:value" (normalised) -> card
	at       map[string]map[string]bool // customer -> stores it identified at
	erasures map[string]Erasure         // id -> erasure
	stores   map[string][]string        // erasure id -> stores asked
	acks     map[[2]string]time.Time    // (store, erasure) -> first receipt
	asked    []string                   // stores cards were asked for, in order
	failNext error
}

var _ Cards = (*mem)(nil)
var _ Erasures = (*mem)(nil)

func newMem(t testing.TB) *mem {
	h, err := identity.NewHasher(identity.Key{Version: 1, Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return &mem{h: h, cards: map[string]Card{}, at: map[string]map[string]bool{}, erasures: map[string]Erasure{},
		stores: map[string][]string{}, acks: map[[2]string]time.Time{}}
}

// identify records that customer c, holding ids (raw "type:value"),
// identified at store.
func (m *mem) identify(t testing.TB, store string, c Card, ids ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, raw := range ids {
		id, err := identity.Parse(raw, "GB")
		if err != nil {
			t.Fatal(err)
		}
		m.cards[id.String()] = c
	}
	if m.at[c.Customer] == nil {
		m.at[c.Customer] = map[string]bool{}
	}
	m.at[c.Customer][store] = true
}

// erase erases customer c: its cards go, and erasure id is pending at
// stores with the digests of ids.
func (m *mem) erase(t testing.TB, id, customer string, stores []string, ids ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := Erasure{ID: id, Customer: customer, Requested: time.Now().UTC()}
	for _, raw := range ids {
		n, err := identity.Parse(raw, "GB")
		if err != nil {
			t.Fatal(err)
		}
		e.Digests = append(e.Digests, m.h.Digest(n).String())
		delete(m.cards, n.String())
	}
	m.erasures[id] = e
	m.stores[id] = stores
}

func (m *mem) CustomerCard(_ context.Context, store string, identifiers map[string]string) (Card, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, store)
	if err := m.failNext; err != nil {
		m.failNext = nil
		return Card{}, err
	}
	for t, v := range identifiers {
		id, err := identity.Normalize(identity.Type(t), v, "GB")
		if err != nil {
			return Card{}, fmt.Errorf("%w: %s", ErrInvalid, t)
		}
		if c, ok := m.cards[id.String()]; ok && m.at[c.Customer][store] {
			return c, nil
		}
	}
	return Card{}, ErrNotFound
}

func (m *mem) StoresWithPendingErasures(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id, stores := range m.stores {
		for _, s := range stores {
			if _, done := m.acks[[2]string{s, id}]; !done && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func (m *mem) PendingErasures(_ context.Context, store string) ([]Erasure, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Erasure
	for id, stores := range m.stores {
		if _, done := m.acks[[2]string{store, id}]; !done && slices.Contains(stores, store) {
			out = append(out, m.erasures[id])
		}
	}
	return out, nil
}

func (m *mem) StoreErasure(_ context.Context, store, id string) (Erasure, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.stores[id], store) {
		return Erasure{}, ErrNotFound
	}
	return m.erasures[id], nil
}

func (m *mem) AckErasure(_ context.Context, store, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.stores[id], store) {
		return ErrNotFound
	}
	k := [2]string{store, id}
	if _, ok := m.acks[k]; !ok {
		m.acks[k] = at
	}
	return nil
}

func (m *mem) acked(store, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.acks[[2]string{store, id}]
	return ok
}

// hub is a running service on a server with the chain's accounts.
type hub struct {
	w   *natsaccttest.World
	nc  *nats.Conn
	m   *mem
	svc *Service
}

func startHub(t testing.TB, every time.Duration, stores ...string) *hub {
	t.Helper()
	w := natsaccttest.Start(t, stores...)
	nc := w.Hub(t)
	m := newMem(t)
	svc, err := New(Options{
		Conn: nc, JS: natsaccttest.DownJS(t, nc), Cards: m, Erasures: m, Hasher: m.h,
		Region: func(string) string { return "GB" }, Every: every, Logger: testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Serving once the endpoints answer.
	s, _ := w.Store(t, stores[0], "")
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, err := s.Request("omni.hub.cust."+stores[0]+".card", []byte(`{}`), 200*time.Millisecond)
		return err == nil
	}, "the customer service answers")
	return &hub{w: w, nc: nc, m: m, svc: svc}
}
