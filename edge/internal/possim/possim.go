// Package possim is a simulated point of sale for demos and `make run`: it
// sells, takes returns, receives deliveries and counts stock by posting to
// the agent's real HTTP API, exactly as a POS app would.
//
// It keeps its own tally of shelf stock so its cycle counts are plausible
// (the tally, minus a little shrinkage), popular SKUs sell more (Zipf), and
// low SKUs get replenished.
package possim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Options configures a simulator.
type Options struct {
	// URL is the agent's base URL, e.g. http://127.0.0.1:7070.
	URL   string
	Store string
	// Rate is events per second.
	Rate float64
	// SKUs is how many SKUs the store carries (SKU-00001 ...).
	SKUs   int
	Seed   uint64
	Logger *slog.Logger
}

// Sim is a running simulated POS.
type Sim struct {
	o      Options
	log    *slog.Logger
	client *http.Client
	rng    *rand.Rand
	zipf   *rand.Zipf
	tally  []int64
	orders int
}

// New builds a simulator.
func New(o Options) *Sim {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x0a11))
	return &Sim{
		o: o, log: o.Logger, rng: rng,
		client: &http.Client{Timeout: 10 * time.Second},
		zipf:   rand.NewZipf(rng, 1.2, 4, uint64(o.SKUs-1)),
		tally:  make([]int64, o.SKUs),
	}
}

// SKU names the i-th SKU.
func SKU(i int) string { return fmt.Sprintf("SKU-%05d", i+1) }

type line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

type draft struct {
	Kind string         `json:"kind"`
	Data map[string]any `json:"data"`
}

// Run trades until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	// Morning delivery: stock every SKU.
	for start := 0; start < s.o.SKUs; start += 400 {
		var lines []line
		for i := start; i < min(start+400, s.o.SKUs); i++ {
			lines = append(lines, line{SKU: SKU(i), Qty: 40})
		}
		if s.post(ctx, draft{Kind: "receipt", Data: map[string]any{"lines": lines, "reason": "opening delivery"}}) {
			for _, l := range lines {
				s.tally[skuIndex(l.SKU)] += l.Qty
			}
		}
	}
	interval := time.Duration(float64(time.Second) / s.o.Rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.step(ctx)
	}
}

func skuIndex(sku string) int {
	var n int
	fmt.Sscanf(sku, "SKU-%05d", &n)
	return n - 1
}

func (s *Sim) step(ctx context.Context) {
	r := s.rng.Float64()
	switch {
	case r < 0.74: // a basket
		n := 1 + s.rng.IntN(3)
		var lines []line
		seen := map[int]bool{}
		for range n {
			i := int(s.zipf.Uint64())
			if seen[i] {
				continue
			}
			seen[i] = true
			lines = append(lines, line{SKU: SKU(i), Qty: 1 + int64(s.rng.IntN(2))})
		}
		if s.post(ctx, draft{Kind: "sale", Data: map[string]any{"lines": lines, "tender": "card"}}) {
			for _, l := range lines {
				s.tally[skuIndex(l.SKU)] -= l.Qty
			}
		}
	case r < 0.82: // a return
		i := int(s.zipf.Uint64())
		if s.post(ctx, draft{Kind: "return", Data: map[string]any{"lines": []line{{SKU(i), 1}}, "reason": "wrong size"}}) {
			s.tally[i]++
		}
	case r < 0.90: // replenish the lowest of a few
		i := s.rng.IntN(s.o.SKUs)
		for range 5 {
			if j := s.rng.IntN(s.o.SKUs); s.tally[j] < s.tally[i] {
				i = j
			}
		}
		if s.post(ctx, draft{Kind: "receipt", Data: map[string]any{"lines": []line{{SKU(i), 24}}}}) {
			s.tally[i] += 24
		}
	case r < 0.94: // cycle count with a little shrinkage
		i := s.rng.IntN(s.o.SKUs)
		counted := max(0, s.tally[i]-int64(s.rng.IntN(2)))
		if s.post(ctx, draft{Kind: "count", Data: map[string]any{"lines": []line{{SKU(i), counted}}}}) {
			s.tally[i] = counted
		}
	case r < 0.97: // click and collect: reserve then hand over
		i := int(s.zipf.Uint64())
		s.orders++
		id := fmt.Sprintf("%s-bopis-%d-%d", s.o.Store, time.Now().Unix(), s.orders)
		l := []line{{SKU(i), 1}}
		if s.post(ctx, draft{Kind: "reserve", Data: map[string]any{"reservation_id": id, "lines": l, "channel": "online"}}) {
			if s.rng.IntN(4) == 0 {
				s.post(ctx, draft{Kind: "release", Data: map[string]any{"reservation_id": id}})
			} else if s.post(ctx, draft{Kind: "fulfil", Data: map[string]any{"reservation_id": id, "lines": l}}) {
				s.tally[i]--
			}
		}
	default: // damaged stock written off
		i := s.rng.IntN(s.o.SKUs)
		if s.post(ctx, draft{Kind: "adjust", Data: map[string]any{"lines": []line{{SKU(i), -1}}, "reason": "damaged"}}) {
			s.tally[i]--
		}
	}
}

// post sends one event and reports whether the agent accepted it.
func (s *Sim) post(ctx context.Context, d draft) bool {
	body, _ := json.Marshal(d)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("POS could not reach the agent", "err", err)
		}
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.log.Warn("agent refused event", "kind", d.Kind, "status", resp.StatusCode, "body", string(b))
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return true
}
