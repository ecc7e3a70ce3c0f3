// Package scanstream fans the agent's parsed scans out to the POS app and the
// kiosk page as Server-Sent Events (GET /v1/scans/stream).
//
// Guarantees: publishing never blocks the device that scanned (a slow or
// stuck client loses its oldest scans, and is told how many with a
// "dropped" event, rather than holding up the scanner); every scan has an
// increasing id, and a client that reconnects with Last-Event-ID gets the
// scans it missed while they are still in the recent-history ring.
//
// Each client holds a connection and a goroutine for as long as it
// listens, so their number is capped (MaxClients): one more is answered
// 503 with Retry-After, and counted (Refused).
//
// Sharp edge: ids restart at 1 when the agent restarts; a Last-Event-ID
// above the current id is treated as "from now".
package scanstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Scan is one parsed barcode or tag read as clients see it.
type Scan struct {
	ID          uint64            `json:"id"`
	Device      string            `json:"device"`
	At          time.Time         `json:"at"`
	Raw         string            `json:"raw"`
	Symbology   string            `json:"symbology,omitempty"`
	GS1         bool              `json:"gs1,omitempty"`
	GTIN        string            `json:"gtin,omitempty"`
	AIs         map[string]string `json:"ais,omitempty"`
	DigitalLink string            `json:"digital_link,omitempty"`
	EPC         string            `json:"epc,omitempty"`
	Serial      string            `json:"serial,omitempty"`
	// Product is filled when the agent's catalog knows the code.
	Product any `json:"product,omitempty"`
	// Cart says Raw is a cart's handoff code (the till loads it with GET
	// /v1/carts/scanned), not a product's.
	Cart bool `json:"cart,omitempty"`
}

// Options configures a Broker.
type Options struct {
	// History is how many recent scans are kept for reconnecting clients (default 256).
	History int
	// Buffer is each client's queue length before its oldest scans are dropped (default 64).
	Buffer int
	// KeepAlive is the period of comment lines that keep proxies from
	// closing an idle stream (default 15s).
	KeepAlive time.Duration
	// MaxClients caps the clients listening at once (default 32: a store's
	// tills, kiosks and mirrors with room to spare).
	MaxClients int
}

// Broker distributes scans to subscribers.
type Broker struct {
	o Options

	mu      sync.Mutex
	next    uint64
	ring    []Scan // recent scans, oldest first
	subs    map[*sub]struct{}
	refused uint64
	closed  bool
}

type sub struct {
	ch      chan Scan
	dropped int
}

// New builds a broker.
func New(o Options) *Broker {
	if o.History <= 0 {
		o.History = 256
	}
	if o.Buffer <= 0 {
		o.Buffer = 64
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 32
	}
	return &Broker{o: o, next: 1, subs: map[*sub]struct{}{}}
}

// Recent returns the scans still held for resuming subscribers, oldest
// first.
func (b *Broker) Recent() []Scan {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Scan(nil), b.ring...)
}

// Publish assigns s its id and hands it to every subscriber without
// blocking. It returns the id.
func (b *Broker) Publish(s Scan) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.ID = b.next
	b.next++
	if s.At.IsZero() {
		s.At = time.Now()
	}
	b.ring = append(b.ring, s)
	if len(b.ring) > b.o.History {
		b.ring = b.ring[len(b.ring)-b.o.History:]
	}
	for c := range b.subs {
		select {
		case c.ch <- s:
		default:
			// Full: drop the oldest queued scan to make room.
			select {
			case <-c.ch:
				c.dropped++
			default:
			}
			select {
			case c.ch <- s:
			default:
				c.dropped++
			}
		}
	}
	return s.ID
}

// Subscribers reports how many clients are listening.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Refused reports how many clients were turned away at MaxClients.
func (b *Broker) Refused() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused
}

// subscribe registers a subscriber and returns the history after lastID;
// nil when MaxClients are already listening.
func (b *Broker) subscribe(lastID uint64) (*sub, []Scan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= b.o.MaxClients {
		b.refused++
		return nil, nil
	}
	c := &sub{ch: make(chan Scan, b.o.Buffer)}
	b.subs[c] = struct{}{}
	var backlog []Scan
	if lastID > 0 && lastID < b.next {
		for _, s := range b.ring {
			if s.ID > lastID {
				backlog = append(backlog, s)
			}
		}
	}
	return c, backlog
}

func (b *Broker) unsubscribe(c *sub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, c)
}

func (b *Broker) takeDropped(c *sub) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := c.dropped
	c.dropped = 0
	return n
}

// ServeHTTP streams scans as Server-Sent Events until the client leaves.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	var last uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, _ = strconv.ParseUint(v, 10, 64)
	}
	c, backlog := b.subscribe(last)
	if c == nil {
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "{\"error\":\"the scan stream has its %d clients already; try again later\"}\n", b.o.MaxClients)
		return
	}
	defer b.unsubscribe(c)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n: omnisync scan stream\n\n")
	for _, s := range backlog {
		if writeScan(w, s) != nil {
			return
		}
	}
	fl.Flush()

	ctx := r.Context()
	keep := time.NewTicker(b.o.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keep.C:
			if _, err := fmt.Fprintf(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case s := <-c.ch:
			if n := b.takeDropped(c); n > 0 {
				fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", n)
			}
			if writeScan(w, s) != nil {
				return
			}
			fl.Flush()
		}
	}
}

func writeScan(w http.ResponseWriter, s Scan) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: scan\ndata: %s\n\n", s.ID, data)
	return err
}

// Wait blocks until at least n subscribers are connected or ctx ends; for
// tests and for a kiosk page that must not miss the first scan.
func (b *Broker) Wait(ctx context.Context, n int) error {
	for b.Subscribers() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
