// Package possim is a simulated point of sale for demos and `make run`: it
// sells, takes returns, receives deliveries and counts stock by posting to
// the agent's real HTTP API, exactly as a POS app would.
//
// It keeps its own tally of shelf stock so its cycle counts are plausible
// (the tally, minus a little shrinkage), popular SKUs sell more (Zipf), and
// low SKUs get replenished.
package possim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Options configures a simulator.
type Options struct {
	// URL is the agent's base URL, e.g. http://127.0.0.1:7070.
	URL string
	// Token is the agent's API token, sent as a bearer token when set.
	Token string
	Store string
	// Rate is events per second.
	Rate float64
	// SKUs is how many SKUs the store carries: SKU-00001 ... by default,
	// or the first SKUs of SKUList (all of them when SKUs is 0).
	SKUs int
	// SKUList, when set, names the SKUs the store sells, most popular
	// first, for instance the SKUs of the catalog the hub imported (see
	// SKUsFromCatalog), so that the stock the kiosk shows is real.
	SKUList []string
	Seed    uint64
	Logger  *slog.Logger
}

// Sim is a running simulated POS.
type Sim struct {
	o      Options
	log    *slog.Logger
	client *http.Client
	rng    *rand.Rand
	zipf   *rand.Zipf
	skus   []string       // what the store sells, most popular first
	index  map[string]int // SKU -> its position in skus
	tally  []int64
	orders int
	// reorder holds SKUs whose shelf fell to reorderPoint, oldest first;
	// queued marks them so each is ordered once.
	reorder []int
	queued  []bool
	// awaiting holds click-and-collect orders reserved and not yet
	// collected, in the order they fall due.
	awaiting []pickup
}

// pickup is a click-and-collect order waiting in the store.
type pickup struct {
	id  string
	sku int
	due time.Time
}

// A click-and-collect order is collected (or, one in four, cancelled) this
// long after it was placed, so the store's pickup list has open orders.
const (
	pickupWaitMin = 30 * time.Second
	pickupWaitMax = 3 * time.Minute
)

// A store reorders a SKU when its shelf falls to reorderPoint and the
// delivery fills it back to shelfFill.
const (
	reorderPoint = 8
	shelfFill    = 40
)

// New builds a simulator.
func New(o Options) *Sim {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x0a11))
	var skus []string
	if len(o.SKUList) > 0 {
		skus = o.SKUList
		if o.SKUs > 0 && o.SKUs < len(skus) {
			skus = skus[:o.SKUs]
		}
	} else {
		for i := range max(o.SKUs, 1) {
			skus = append(skus, SKU(i))
		}
	}
	o.SKUs = len(skus)
	index := make(map[string]int, len(skus))
	for i, s := range skus {
		index[s] = i
	}
	return &Sim{
		o: o, log: o.Logger, rng: rng,
		client: &http.Client{Timeout: 10 * time.Second},
		zipf:   rand.NewZipf(rng, 1.2, 4, uint64(o.SKUs-1)),
		skus:   skus,
		index:  index,
		tally:  make([]int64, o.SKUs),
		queued: make([]bool, o.SKUs),
	}
}

// SKUsFromCatalog reads the SKUs of a catalog file as `omnictl catalog
// import` takes it, in file order: JSON Lines (the "sku" key of each
// object) or CSV (the "sku" column named in the header row).
func SKUsFromCatalog(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(512)
	if b := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"); len(b) > 0 && b[0] == '{' {
		var out []string
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(bytes.TrimPrefix(sc.Bytes(), []byte("\xef\xbb\xbf")))
			if len(line) == 0 {
				continue
			}
			var row struct {
				SKU string `json:"sku"`
			}
			if err := json.Unmarshal(line, &row); err == nil && row.SKU != "" {
				out = append(out, row.SKU)
			}
		}
		return out, sc.Err()
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("possim: catalog header: %w", err)
	}
	col := -1
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), "sku") {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("possim: the catalog has no sku column")
	}
	var out []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("possim: catalog: %w", err)
		}
		if col < len(rec) && strings.TrimSpace(rec[col]) != "" {
			out = append(out, strings.TrimSpace(rec[col]))
		}
	}
}

// SKU names the i-th SKU of a store without a SKUList.
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
			lines = append(lines, line{SKU: s.skus[i], Qty: shelfFill})
		}
		if s.post(ctx, draft{Kind: "receipt", Data: map[string]any{"lines": lines, "reason": "opening delivery"}}) {
			for _, l := range lines {
				s.tally[s.index[l.SKU]] += l.Qty
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

// step does one thing a store does. Shoppers buy only what is on the shelf
// and the store reorders what runs low, so the books stay plausible for
// hours of a demo; oversells come from other channels and offline merges,
// not from the till selling stock it never had.
func (s *Sim) step(ctx context.Context) {
	if len(s.awaiting) > 0 && !time.Now().Before(s.awaiting[0].due) {
		s.collect(ctx)
		return
	}
	r := s.rng.Float64()
	switch {
	case r < 0.74: // a basket
		n := 1 + s.rng.IntN(3)
		var lines []line
		seen := map[int]bool{}
		for range n {
			i := int(s.zipf.Uint64())
			if seen[i] || s.tally[i] <= 0 {
				continue
			}
			seen[i] = true
			lines = append(lines, line{SKU: s.skus[i], Qty: min(1+int64(s.rng.IntN(2)), s.tally[i])})
		}
		if len(lines) > 0 && s.post(ctx, draft{Kind: "sale", Data: map[string]any{"lines": lines, "tender": "card"}}) {
			for _, l := range lines {
				s.take(s.index[l.SKU], l.Qty)
			}
		}
	case r < 0.82: // a return
		i := int(s.zipf.Uint64())
		if s.post(ctx, draft{Kind: "return", Data: map[string]any{"lines": []line{{s.skus[i], 1}}, "reason": "wrong size"}}) {
			s.tally[i]++
		}
	case r < 0.90: // a delivery: the oldest reorder, else the lowest of a few
		i := s.rng.IntN(s.o.SKUs)
		if len(s.reorder) > 0 {
			i = s.reorder[0]
		} else {
			for range 5 {
				if j := s.rng.IntN(s.o.SKUs); s.tally[j] < s.tally[i] {
					i = j
				}
			}
		}
		qty := max(shelfFill-s.tally[i], 12)
		if s.post(ctx, draft{Kind: "receipt", Data: map[string]any{"lines": []line{{s.skus[i], qty}}}}) {
			s.tally[i] += qty
			if len(s.reorder) > 0 && s.reorder[0] == i {
				s.reorder = s.reorder[1:]
				s.queued[i] = false
			}
		}
	case r < 0.94: // cycle count with a little shrinkage
		i := s.rng.IntN(s.o.SKUs)
		counted := max(0, s.tally[i]-int64(s.rng.IntN(2)))
		if s.post(ctx, draft{Kind: "count", Data: map[string]any{"lines": []line{{s.skus[i], counted}}}}) {
			s.tally[i] = counted
			s.take(i, 0)
		}
	case r < 0.97: // click and collect: reserved now, collected later
		i := int(s.zipf.Uint64())
		if s.tally[i] <= 0 {
			return
		}
		s.orders++
		id := fmt.Sprintf("%s-bopis-%d-%d", s.o.Store, time.Now().Unix(), s.orders)
		l := []line{{s.skus[i], 1}}
		if s.post(ctx, draft{Kind: "reserve", Data: map[string]any{"reservation_id": id, "lines": l, "channel": "online"}}) {
			// Put aside for the shopper: off the shelf until collected.
			s.take(i, 1)
			wait := pickupWaitMin + time.Duration(s.rng.Int64N(int64(pickupWaitMax-pickupWaitMin)))
			s.awaiting = append(s.awaiting, pickup{id: id, sku: i, due: time.Now().Add(wait)})
			slices.SortStableFunc(s.awaiting, func(a, b pickup) int { return a.due.Compare(b.due) })
		}
	default: // damaged stock written off
		i := s.rng.IntN(s.o.SKUs)
		if s.tally[i] <= 0 {
			return
		}
		if s.post(ctx, draft{Kind: "adjust", Data: map[string]any{"lines": []line{{s.skus[i], -1}}, "reason": "damaged"}}) {
			s.take(i, 1)
		}
	}
}

// collect settles the click-and-collect order due first: the shopper picks
// it up, or, one in four, it is cancelled and goes back on the shelf. An
// order the agent does not accept now is tried again at the next step.
func (s *Sim) collect(ctx context.Context) {
	o := s.awaiting[0]
	if s.rng.IntN(4) == 0 {
		if !s.post(ctx, draft{Kind: "release", Data: map[string]any{"reservation_id": o.id}}) {
			return
		}
		s.tally[o.sku]++
	} else if !s.post(ctx, draft{Kind: "fulfil", Data: map[string]any{"reservation_id": o.id, "lines": []line{{s.skus[o.sku], 1}}}}) {
		return
	}
	s.awaiting = s.awaiting[1:]
}

// take removes qty of SKU i from the shelf and reorders it when it runs low.
func (s *Sim) take(i int, qty int64) {
	s.tally[i] -= qty
	if s.tally[i] <= reorderPoint && !s.queued[i] {
		s.queued[i] = true
		s.reorder = append(s.reorder, i)
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
	if s.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.Token)
	}
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
