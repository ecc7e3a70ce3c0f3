package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/retry"
)

// Stock is what the books say of one position.
type Stock struct {
	OnHand   int64 `json:"on_hand"`
	Reserved int64 `json:"reserved"`
}

// Books are stock positions by (SKU, location).
type Books map[inventory.Key]Stock

// Locations lists the locations b names, sorted.
func (b Books) Locations() []string {
	seen := map[string]bool{}
	var out []string
	for k := range b {
		if !seen[k.Location] {
			seen[k.Location] = true
			out = append(out, k.Location)
		}
	}
	slices.Sort(out)
	return out
}

// Expected returns the books the hub must show once it has applied envs:
// the envelopes replayed through inventory.Book, the rules' naive oracle
// (duplicates by event id count once; non-inventory events change
// nothing). An inventory event the rules cannot apply is an error.
func Expected(envs []events.Envelope) (Books, error) {
	book, err := Replay(envs)
	if err != nil {
		return nil, err
	}
	return BooksOf(book), nil
}

// Replay replays envs through inventory.Book: the oracle behind Expected,
// for callers that want more of it (its reservations, say).
func Replay(envs []events.Envelope) (*inventory.Book, error) {
	book := inventory.NewBook()
	for _, e := range envs {
		if err := book.Add(e); err != nil {
			return nil, fmt.Errorf("loadgen: event %s (%s from %s/%s seq %d): %w", e.ID, e.Kind, e.Origin.Store, e.Origin.Device, e.Origin.Seq, err)
		}
	}
	return book, nil
}

// BooksOf is the stock positions of book.
func BooksOf(book *inventory.Book) Books {
	out := Books{}
	for k, p := range book.Positions() {
		out[k] = Stock{OnHand: p.OnHand, Reserved: p.Reserved}
	}
	return out
}

// Difference is one position where the books disagree.
type Difference struct {
	Key       inventory.Key
	Want, Got Stock
}

func (d Difference) String() string {
	return fmt.Sprintf("%s at %s: want on_hand %d reserved %d, got on_hand %d reserved %d",
		d.Key.SKU, d.Key.Location, d.Want.OnHand, d.Want.Reserved, d.Got.OnHand, d.Got.Reserved)
}

// Compare lists the positions where got differs from want, sorted by SKU
// then location; a position missing on one side counts as zero there.
func Compare(want, got Books) []Difference {
	var out []Difference
	for k, w := range want {
		if g := got[k]; g != w {
			out = append(out, Difference{Key: k, Want: w, Got: g})
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != (Stock{}) {
			out = append(out, Difference{Key: k, Got: g})
		}
	}
	slices.SortFunc(out, func(a, b Difference) int { return a.Key.Compare(b.Key) })
	return out
}

// FetchBooks reads the hub's books through GET /v1/inventory, page by page:
// every position at the given locations, or everywhere without any.
func FetchBooks(ctx context.Context, hub Hub, locations ...string) (Books, error) {
	out := Books{}
	if len(locations) == 0 {
		locations = []string{""}
	}
	for _, loc := range locations {
		after := ""
		for {
			q := url.Values{"limit": {"1000"}}
			if loc != "" {
				q.Set("location", loc)
			}
			if after != "" {
				q.Set("after", after)
			}
			var page api.StockPage
			if err := hub.getJSON(ctx, "/v1/inventory?"+q.Encode(), &page); err != nil {
				return nil, err
			}
			for _, it := range page.Items {
				out[inventory.Key{SKU: it.SKU, Location: it.Location}] = Stock{OnHand: it.OnHand, Reserved: it.Reserved}
			}
			if page.Next == "" || page.Next == after {
				break
			}
			after = page.Next
		}
	}
	return out, nil
}

// DeviceKey names a device.
type DeviceKey struct{ Store, Device string }

// DeviceProgress is what the hub says of a device in GET /v1/stores.
type DeviceProgress struct {
	// Applied counts the device's events the hub applied, over all its
	// epochs (dead-lettered ones excluded).
	Applied int64
	// Epoch is the device's current epoch and Watermark the seq up to which
	// the hub has processed all of it.
	Epoch, Watermark uint64
	Connected        bool
	Backlog          int64
}

// FetchApplied reads every device's progress from the hub's GET /v1/stores.
func FetchApplied(ctx context.Context, hub Hub) (map[DeviceKey]DeviceProgress, error) {
	var r struct {
		Stores []api.StoreHealth `json:"stores"`
	}
	if err := hub.getJSON(ctx, "/v1/stores", &r); err != nil {
		return nil, err
	}
	out := map[DeviceKey]DeviceProgress{}
	for _, s := range r.Stores {
		for _, d := range s.Devices {
			out[DeviceKey{s.Store, d.Device}] = DeviceProgress{
				Applied: d.EventsApplied, Epoch: d.Epoch, Watermark: d.Watermark, Connected: d.Connected, Backlog: d.Backlog,
			}
		}
	}
	return out, nil
}

// DeviceCount sets one device's accepted events against the hub's count.
type DeviceCount struct {
	DeviceKey
	// Accepted counts the distinct events the device's agent accepted.
	Accepted int64
	// Applied is the hub's count for the device.
	Applied int64
	// Lost is Accepted − Applied when positive (after the drain: events
	// lost, or dead-lettered); DoubleApplied is Applied − Accepted when
	// positive.
	Lost, DoubleApplied int64
	// Pending says the hub has not yet processed the device's last
	// accepted event of its current epoch (its watermark is below it): the
	// drain is not over.
	Pending bool
}

// Tally counts envs per device and sets them against the hub's progress.
// Devices are sorted by store and device.
func Tally(envs []events.Envelope, hub map[DeviceKey]DeviceProgress) []DeviceCount {
	type acc struct {
		ids    map[string]bool
		maxSeq map[uint64]uint64 // epoch -> seq
	}
	per := map[DeviceKey]*acc{}
	for _, e := range envs {
		k := DeviceKey{e.Origin.Store, e.Origin.Device}
		a := per[k]
		if a == nil {
			a = &acc{ids: map[string]bool{}, maxSeq: map[uint64]uint64{}}
			per[k] = a
		}
		a.ids[e.ID] = true
		a.maxSeq[e.Origin.Epoch] = max(a.maxSeq[e.Origin.Epoch], e.Origin.Seq)
	}
	out := make([]DeviceCount, 0, len(per))
	for k, a := range per {
		h := hub[k]
		c := DeviceCount{DeviceKey: k, Accepted: int64(len(a.ids)), Applied: h.Applied}
		c.Lost = max(0, c.Accepted-c.Applied)
		c.DoubleApplied = max(0, c.Applied-c.Accepted)
		switch last, ok := a.maxSeq[h.Epoch]; {
		case h.Epoch == 0: // the hub has not heard of the device yet
			c.Pending = true
		case ok && h.Watermark < last:
			c.Pending = true
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b DeviceCount) int {
		return cmp.Or(strings.Compare(a.Store, b.Store), strings.Compare(a.Device, b.Device))
	})
	return out
}

// Verdict is one comparison of the hub with the oracle.
type Verdict struct {
	// Positions counts the positions compared (either side naming them).
	Positions   int
	Differences []Difference
	Devices     []DeviceCount
	// Accepted, Applied, Lost and DoubleApplied sum Devices.
	Accepted, Applied, Lost, DoubleApplied int64
	// Pending says some device's last accepted event is not yet processed.
	Pending bool
}

// OK reports whether the hub's books equal the oracle's and every accepted
// event was applied exactly once.
func (v Verdict) OK() bool {
	return len(v.Differences) == 0 && v.Lost == 0 && v.DoubleApplied == 0
}

// Checker compares a hub with the books a set of accepted events implies.
type Checker struct {
	envs      []events.Envelope
	want      Books
	locations []string
}

// NewChecker computes the expected books of envs once.
func NewChecker(envs []events.Envelope) (*Checker, error) {
	want, err := Expected(envs)
	if err != nil {
		return nil, err
	}
	return &Checker{envs: envs, want: want, locations: want.Locations()}, nil
}

// Expected returns the books the hub must show.
func (c *Checker) Expected() Books { return c.want }

// Check compares the hub now: its books at the locations the events
// touched, and its applied counts of their devices.
func (c *Checker) Check(ctx context.Context, hub Hub) (Verdict, error) {
	var v Verdict
	if len(c.locations) > 0 {
		got, err := FetchBooks(ctx, hub, c.locations...)
		if err != nil {
			return v, err
		}
		keys := len(c.want)
		for k := range got {
			if _, ok := c.want[k]; !ok {
				keys++
			}
		}
		v.Positions = keys
		v.Differences = Compare(c.want, got)
	}
	prog, err := FetchApplied(ctx, hub)
	if err != nil {
		return v, err
	}
	v.Devices = Tally(c.envs, prog)
	for _, d := range v.Devices {
		v.Accepted += d.Accepted
		v.Applied += d.Applied
		v.Lost += d.Lost
		v.DoubleApplied += d.DoubleApplied
		v.Pending = v.Pending || d.Pending
	}
	return v, nil
}

// Wait checks the hub every poll (default 250ms) until the verdict is OK
// or ctx ends, and returns the last verdict: the caller bounds the drain
// with ctx's deadline. It fails only if the hub never answered.
func (c *Checker) Wait(ctx context.Context, hub Hub, poll time.Duration) (Verdict, error) {
	return c.WaitProgress(ctx, hub, poll, nil)
}

// WaitProgress is Wait that hands each check's outcome (a verdict, or the
// error reaching the hub) to progress, when it is not nil.
func (c *Checker) WaitProgress(ctx context.Context, hub Hub, poll time.Duration, progress func(Verdict, error)) (Verdict, error) {
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	var last Verdict
	var lastErr error
	got := false
	for {
		v, err := c.Check(ctx, hub)
		switch {
		case err == nil:
			last, got, lastErr = v, true, nil
			if v.OK() {
				return v, nil
			}
		case ctx.Err() == nil:
			lastErr = err
		}
		if progress != nil && ctx.Err() == nil {
			progress(last, lastErr)
		}
		if retry.Sleep(ctx, poll) != nil {
			if !got {
				return last, cmp.Or(lastErr, ctx.Err())
			}
			return last, nil
		}
	}
}

// Verify waits until the hub shows the books envs imply and has
// applied each of them exactly once, or ctx ends; see Checker.Wait.
func Verify(ctx context.Context, hub Hub, envs []events.Envelope) (Verdict, error) {
	c, err := NewChecker(envs)
	if err != nil {
		return Verdict{}, err
	}
	return c.Wait(ctx, hub, 0)
}

// Hub is the hub whose books are checked: its base URL and an API token
// with inventory:read and stores:read (omnictl tokens create --scopes
// 'inventory:read stores:read').
type Hub struct {
	URL   string
	Token string
}

// getJSON GETs the hub's path into out; ctx bounds it.
func (h Hub) getJSON(ctx context.Context, path string, out any) error {
	u := trimSlash(h.URL) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: hub: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("loadgen: hub: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Field string }
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("loadgen: hub: GET %s: %s: %s", u, resp.Status, cmp.Or(e.Error, strconv.Quote(string(b))))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("loadgen: hub: GET %s: %w", u, err)
	}
	return nil
}

func trimSlash(u string) string { return strings.TrimRight(u, "/") }
