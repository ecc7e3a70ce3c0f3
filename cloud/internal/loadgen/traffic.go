package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/retry"
)

// request is one POST the tills will send, and what its answer means to
// the store's state.
type request struct {
	kind events.Kind
	// body is the POST body: one event, location left for the agent.
	body []byte
	// drafts are the events as the agent stores them (location filled in).
	drafts []events.Draft
	// done is called once with the final outcome: true if accepted,
	// false if refused or rejected; not at all if unresolved.
	done func(accepted bool)
}

// shelf is what the tills of one store believe about it: their own view,
// built from the events their agent accepted, used only to make the next
// events plausible (the oracle never reads it).
type shelf struct {
	mu       sync.Mutex
	onHand   map[string]int64
	received []string // SKUs this run received here, in first-receipt order
	wasRecv  map[string]bool
	sold     []string // a ring of recently sold SKUs, for returns
	soldNext int
	open     []reservation // reserved here, not yet closed
	nextRes  int
}

type reservation struct {
	id    string
	lines []events.Line
}

const soldRing = 512

func newShelf() *shelf {
	return &shelf{onHand: map[string]int64{}, wasRecv: map[string]bool{}}
}

// kindChoice is one of the Mix's kinds.
type kindChoice int

const (
	choiceSale kindChoice = iota
	choiceReturn
	choiceReceipt
	choiceAdjust
	choiceCount
	choiceReservation
	choiceReview
	choiceScan
)

// traffic builds the events of one till.
type traffic struct {
	o       *Options
	store   string
	till    string // "<target>-<worker>", for keys and sessions
	rng     *rand.Rand
	zipf    *rand.Zipf
	ranking []string // SKUs, most popular first
	cum     []float64
	shelf   *shelf
	n       int // requests built
}

func newTraffic(o *Options, ranking []string, sh *shelf, store string, target, worker int) *traffic {
	rng := rand.New(rand.NewPCG(o.Seed, uint64(target)<<32|uint64(worker)))
	m := o.Mix
	w := []float64{m.Sale, m.Return, m.Receipt, m.Adjust, m.Count, m.Reservation, m.Review, m.Scan}
	cum := make([]float64, len(w))
	sum := 0.0
	for i, x := range w {
		sum += x
		cum[i] = sum
	}
	var z *rand.Zipf
	if len(ranking) > 1 {
		z = rand.NewZipf(rng, o.Zipf, 1, uint64(len(ranking)-1))
	}
	return &traffic{o: o, store: store, till: fmt.Sprintf("%d-%d", target, worker), rng: rng, zipf: z, ranking: ranking, cum: cum, shelf: sh}
}

// rankSKUs orders skus by popularity for seed: a shuffle, so that the
// bestsellers are not simply the first rows of the catalog.
func rankSKUs(skus []string, seed uint64) []string {
	out := append([]string(nil), skus...)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (tr *traffic) sku() string {
	if tr.zipf == nil {
		return tr.ranking[0]
	}
	return tr.ranking[tr.zipf.Uint64()]
}

// distinctSKUs draws up to n different SKUs.
func (tr *traffic) distinctSKUs(n int) []string {
	out := make([]string, 0, n)
	for tries := 0; len(out) < n && tries < 4*n; tries++ {
		s := tr.sku()
		dup := false
		for _, x := range out {
			dup = dup || x == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

func (tr *traffic) choose() kindChoice {
	x := tr.rng.Float64() * tr.cum[len(tr.cum)-1]
	for i, c := range tr.cum {
		if x < c {
			return kindChoice(i)
		}
	}
	return choiceSale
}

// next builds the till's next request.
func (tr *traffic) next() (request, error) {
	tr.n++
	var kind events.Kind
	var data any
	var done func(bool)
	sh := tr.shelf
	sh.mu.Lock()
	switch c := tr.choose(); {
	case c == choiceReturn && len(sh.sold) > 0:
		sku := sh.sold[tr.rng.IntN(len(sh.sold))]
		kind, data = events.KindReturn, map[string]any{
			"lines":  []events.Line{{SKU: sku, Qty: 1}},
			"reason": pickOf(tr.rng, returnReasons),
		}
		done = tr.onStock(events.KindReturn, []events.Line{{SKU: sku, Qty: 1}})
	case c == choiceReceipt || (c == choiceCount && len(sh.received) == 0):
		lines := make([]events.Line, 0, 4)
		for _, s := range tr.distinctSKUs(1 + tr.rng.IntN(4)) {
			lines = append(lines, events.Line{SKU: s, Qty: int64(6 * (1 + tr.rng.IntN(8)))})
		}
		kind, data = events.KindReceipt, map[string]any{"lines": lines, "order_id": fmt.Sprintf("lg-%s-po%s-%d", tr.o.RunID, tr.till, tr.n)}
		done = tr.onStock(events.KindReceipt, lines)
	case c == choiceAdjust:
		sku := tr.sku()
		if len(sh.received) > 0 && tr.rng.IntN(2) == 0 {
			sku = sh.received[tr.rng.IntN(len(sh.received))]
		}
		qty, reason := -int64(1+tr.rng.IntN(3)), "damaged"
		if tr.rng.IntN(4) == 0 {
			qty, reason = int64(1+tr.rng.IntN(2)), "found"
		}
		lines := []events.Line{{SKU: sku, Qty: qty}}
		kind, data = events.KindAdjust, map[string]any{"lines": lines, "reason": reason}
		done = tr.onStock(events.KindAdjust, lines)
	case c == choiceCount:
		sku := sh.received[tr.rng.IntN(len(sh.received))]
		qty := min(max(0, sh.onHand[sku]-int64(tr.rng.IntN(3))), events.MaxCountQty)
		lines := []events.Line{{SKU: sku, Qty: qty}}
		kind, data = events.KindCount, map[string]any{"lines": lines, "reason": "cycle count", "method": events.CountCycle}
		done = tr.onStock(events.KindCount, lines)
	case c == choiceReservation && len(sh.open) > 0 && tr.rng.IntN(2) == 0:
		i := tr.rng.IntN(len(sh.open))
		r := sh.open[i]
		sh.open = append(sh.open[:i], sh.open[i+1:]...)
		if tr.rng.IntN(10) < 7 {
			kind, data = events.KindFulfil, map[string]any{"reservation_id": r.id, "lines": r.lines}
		} else {
			kind, data = events.KindRelease, map[string]any{"reservation_id": r.id}
		}
		k := kind
		done = func(ok bool) {
			sh.mu.Lock()
			defer sh.mu.Unlock()
			switch {
			case !ok:
				sh.open = append(sh.open, r) // still held: close it later
			case k == events.KindFulfil:
				for _, l := range r.lines {
					sh.onHand[l.SKU] -= l.Qty
				}
			}
		}
	case c == choiceReservation:
		sh.nextRes++
		r := reservation{id: fmt.Sprintf("lg-%s-%s-r%d", tr.o.RunID, tr.store, sh.nextRes)}
		for _, s := range tr.distinctSKUs(1 + tr.rng.IntN(2)) {
			r.lines = append(r.lines, events.Line{SKU: s, Qty: 1})
		}
		kind, data = events.KindReserve, map[string]any{
			"reservation_id": r.id, "lines": r.lines, "channel": "online",
			"order_id": fmt.Sprintf("lg-%s-%s-o%d", tr.o.RunID, tr.store, sh.nextRes),
		}
		done = func(ok bool) {
			if ok {
				sh.mu.Lock()
				sh.open = append(sh.open, r)
				sh.mu.Unlock()
			}
		}
	case c == choiceReview:
		sku := tr.sku()
		rating := reviewRating(tr.rng)
		kind, data = events.KindReview, events.Review{
			ProductID: tr.o.Products[sku], SKU: sku, Rating: rating,
			Title: pickOf(tr.rng, reviewTitles[rating-1]), Text: pickOf(tr.rng, reviewTexts[rating-1]),
			Nickname: pickOf(tr.rng, nicknames), Session: fmt.Sprintf("lg-%s-%s-s%d", tr.o.RunID, tr.till, tr.n),
		}
		if data.(events.Review).ProductID == "" {
			kind, data = tr.scan(sku)
		}
	case c == choiceScan:
		kind, data = tr.scan(tr.sku())
	default: // a sale, and a return with nothing sold yet
		n := 1
		if x := tr.rng.IntN(100); x >= 88 {
			n = 3
		} else if x >= 60 {
			n = 2
		}
		lines := make([]events.Line, 0, n)
		for _, s := range tr.distinctSKUs(n) {
			q := int64(1)
			if x := tr.rng.IntN(100); x >= 97 {
				q = 3
			} else if x >= 85 {
				q = 2
			}
			l := events.Line{SKU: s, Qty: q}
			if p, ok := tr.o.Prices[s]; ok && p > 0 {
				l.UnitPrice = &p
			}
			lines = append(lines, l)
		}
		kind, data = events.KindSale, map[string]any{"lines": lines, "channel": "pos"}
		done = tr.onStock(events.KindSale, lines)
	}
	sh.mu.Unlock()

	b, err := json.Marshal(struct {
		Kind events.Kind `json:"kind"`
		Data any         `json:"data"`
	}{kind, data})
	if err != nil {
		return request{}, err
	}
	drafts, err := events.ParseDrafts(b, tr.store)
	if err != nil {
		return request{}, fmt.Errorf("loadgen: built an invalid %s event (a bug): %w: %s", kind, err, b)
	}
	if done == nil {
		done = func(bool) {}
	}
	return request{kind: kind, body: b, drafts: drafts, done: done}, nil
}

func (tr *traffic) scan(sku string) (events.Kind, events.Scan) {
	if g := tr.o.GTINs[sku]; len(g) == 14 {
		code := g
		if g[0] == '0' {
			code = g[1:] // what an EAN-13 scanner reads
		}
		return events.KindScan, events.Scan{Code: code, GTIN: g, SKU: sku}
	}
	return events.KindScan, events.Scan{Code: sku, SKU: sku}
}

// onStock returns what an accepted stock event does to the shelf's view.
func (tr *traffic) onStock(k events.Kind, lines []events.Line) func(bool) {
	sh := tr.shelf
	return func(ok bool) {
		if !ok {
			return
		}
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, l := range lines {
			switch k {
			case events.KindCount:
				sh.onHand[l.SKU] = l.Qty
			default:
				sh.onHand[l.SKU] += events.Delta(k, l)
			}
			switch k {
			case events.KindReceipt:
				if !sh.wasRecv[l.SKU] {
					sh.wasRecv[l.SKU] = true
					sh.received = append(sh.received, l.SKU)
				}
			case events.KindSale:
				if len(sh.sold) < soldRing {
					sh.sold = append(sh.sold, l.SKU)
				} else {
					sh.sold[sh.soldNext] = l.SKU
					sh.soldNext = (sh.soldNext + 1) % soldRing
				}
			}
		}
	}
}

func pickOf(rng *rand.Rand, xs []string) string { return xs[rng.IntN(len(xs))] }

// reviewRating draws stars the way retail reviews skew: mostly 4 and 5.
func reviewRating(rng *rand.Rand) int {
	x := rng.IntN(100)
	switch {
	case x < 5:
		return 1
	case x < 12:
		return 2
	case x < 25:
		return 3
	case x < 55:
		return 4
	}
	return 5
}

var (
	returnReasons = []string{"wrong size", "changed mind", "faulty", "gift"}
	nicknames     = []string{"Sam", "Alex", "Jo", "Robin", "Kim", "Charlie", "Maria", "Lee", "Noor", "Ana"}
	reviewTitles  = [5][]string{
		{"Disappointed", "Not as pictured"},
		{"Could be better", "Runs small"},
		{"Okay", "Does the job"},
		{"Very nice", "Good value"},
		{"Love it", "Perfect fit", "Excellent quality"},
	}
	reviewTexts = [5][]string{
		{"The fabric felt thin and it lost its shape after one wash."},
		{"Nice colour but the sizing is off; I had to go up a size."},
		{"Fine for the price. Nothing special, nothing wrong."},
		{"Comfortable and well made. Would buy again in another colour."},
		{"Exactly what I wanted. Great fit, and the staff were helpful.", "Bought it after trying it on in store; wearing it every day."},
	}
)

// dayCurve is the shape of a store's day, phase 0 at 08:00 (opening) and
// 1 a day later: a quiet night (about 3% of the peak), a morning ramp, a
// lunch rush and the evening peak at 17:30, which is 1.
type dayCurve struct{ peak float64 }

func newDayCurve() dayCurve {
	c := dayCurve{peak: 1}
	m := 0.0
	for i := 0; i < 24*60; i++ {
		m = max(m, c.raw(float64(i)/(24*60)))
	}
	return dayCurve{peak: m}
}

func (c dayCurve) raw(phase float64) float64 {
	h := math.Mod(8+24*phase, 24)
	if h < 8 || h >= 21 {
		return 0.03
	}
	g := func(mu, sigma float64) float64 { return math.Exp(-(h - mu) * (h - mu) / (2 * sigma * sigma)) }
	return 0.25 + 0.6*g(12.75, 0.9) + 0.9*g(17.5, 1.5)
}

// at is the fraction of the peak rate at phase (0..1 of the day).
func (c dayCurve) at(phase float64) float64 { return c.raw(phase) / c.peak }

// bucket paces one target: a token bucket whose rate may change with
// time (the diurnal curve). Many tills take from it.
type bucket struct {
	rate  func(since time.Duration) float64
	start time.Time
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(start time.Time, peak float64, rate func(time.Duration) float64) *bucket {
	return &bucket{rate: rate, start: start, burst: max(1, peak/20), tokens: 1, last: start}
}

// take waits for a token; false when ctx ends first.
func (b *bucket) take(ctx context.Context) bool {
	for {
		b.mu.Lock()
		now := time.Now()
		r := b.rate(now.Sub(b.start))
		b.tokens = min(b.burst, b.tokens+r*now.Sub(b.last).Seconds())
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return true
		}
		wait := 20 * time.Millisecond
		if r > 0 {
			wait = min(wait, time.Duration((1-b.tokens)/r*float64(time.Second))+time.Millisecond)
		}
		b.mu.Unlock()
		if retry.Sleep(ctx, wait) != nil {
			return false
		}
	}
}
