package loadgen

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
)

// ErrInvalidOption wraps every problem New finds with Options.
var ErrInvalidOption = errors.New("loadgen: invalid option")

// Target is one agent to drive.
type Target struct {
	// Store and Device identify the agent; empty ones are read from its
	// GET /v1/status when the run starts (and given ones checked).
	Store  string `json:"store"`
	Device string `json:"device"`
	// URL is the agent's base URL, e.g. http://127.0.0.1:7070.
	URL string `json:"url"`
}

func (t Target) String() string {
	if t.Store == "" {
		return t.URL
	}
	return t.Store + "/" + t.Device
}

// Window closes one target's POS for a while: nothing is sent to it from
// Start to End (both measured from the start of the run). Network
// partitions are the chaos harness's business, not this one.
type Window struct {
	Target     int // index in Options.Targets
	Start, End time.Duration
}

// Mix weighs the kinds of traffic; only ratios matter. The zero Mix is
// DefaultMix.
type Mix struct {
	// Sale: a basket of 1–3 lines.
	Sale float64
	// Return: one unit of a SKU this store sold earlier in the run.
	Return float64
	// Receipt: a delivery of 1–4 SKUs, by the case.
	Receipt float64
	// Adjust: damage (−) or found stock (+).
	Adjust float64
	// Count: an absolute count of one SKU, only where this run received
	// stock, at what the tills believe is on the shelf less a little
	// shrinkage, so the books stay meaningful.
	Count float64
	// Reservation: a new online reservation (reserve), or the release or
	// fulfilment of one this store holds.
	Reservation float64
	// Review: a shopper's review; needs Options.Products, none without.
	Review float64
	// Scan: a product lookup.
	Scan float64
}

// DefaultMix is a store's day: 70% sales, 5% returns, 8% receipts, 2%
// adjustments, 3% counts, 5% reservation traffic, 3% reviews, 4% scans.
func DefaultMix() Mix {
	return Mix{Sale: 70, Return: 5, Receipt: 8, Adjust: 2, Count: 3, Reservation: 5, Review: 3, Scan: 4}
}

// Defaults for zero Options fields.
const (
	DefaultZipf           = 1.1
	DefaultWorkers        = 4
	DefaultRequestTimeout = 10 * time.Second
	DefaultBackoff        = 20 * time.Millisecond
	DefaultMaxBackoff     = time.Second
	DefaultSettle         = 30 * time.Second
)

// Options configures a Generator. Zero fields take the defaults above.
type Options struct {
	// Targets are the agents to drive (at least one).
	Targets []Target
	// SKUs are what the stores sell (at least one); UseCatalog fills them
	// (and Products, Prices, GTINs) from a catalog. Their popularity
	// follows Zipf's law in an order shuffled by Seed.
	SKUs []string
	// Products maps a SKU to its product id; reviews need it and are left
	// out of the Mix without it.
	Products map[string]string
	// Prices maps a SKU to its unit price in minor units, sent with sales
	// (optional).
	Prices map[string]int64
	// GTINs maps a SKU to its GTIN-14; scans then send the barcode rather
	// than the SKU (optional).
	GTINs map[string]string
	// Zipf is the exponent s (> 1) of SKU popularity [DefaultZipf].
	Zipf float64
	// Seed makes the traffic of each till reproducible.
	Seed uint64
	// RunID is put into idempotency keys, reservation ids and review
	// sessions so that runs never collide [the start time, base 36].
	RunID string

	// Rate is the total events per second over all targets, shared evenly
	// between them (with Diurnal, the rate at the day's peak); 0 sends as
	// fast as the tills are answered.
	Rate float64
	// Workers is the number of tills per target, each waiting for its
	// answer before its next request [DefaultWorkers].
	Workers int
	// Duration and Events end the run (whichever comes first); with
	// neither, it runs until its context ends.
	Duration time.Duration
	Events   int64
	// Mix weighs the kinds of traffic [DefaultMix].
	Mix Mix
	// Diurnal, when set, makes the rate follow a day compressed into this
	// period: the run opens at 08:00, with a lunch rush and an evening
	// peak (Rate), and the night is quiet (about 3% of it). Ignored when
	// Rate is 0.
	Diurnal time.Duration
	// Offline closes targets' POS for windows of the run.
	Offline []Window

	// Record, if set, receives every accepted envelope as a JSON line (see
	// ReadRecord), in the order the answers arrived.
	Record io.Writer
	// Client sends the requests [one with RequestTimeout and enough idle
	// connections for every till].
	Client *http.Client
	// RequestTimeout bounds one attempt when Client is nil
	// [DefaultRequestTimeout].
	RequestTimeout time.Duration
	// Backoff is the first wait before a retry, doubled up to MaxBackoff
	// [DefaultBackoff, DefaultMaxBackoff], with jitter.
	Backoff, MaxBackoff time.Duration
	// Settle is how long requests already sent keep being retried once the
	// run is over (its context ended, or Duration or Events was reached)
	// [DefaultSettle]; negative: not at all. What is still unanswered then
	// is in Report.Unresolved.
	Settle time.Duration
	// Logger gets retries and rejections [discard].
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
	}
	if len(o.Targets) == 0 {
		bad("no targets")
	}
	for i, t := range o.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("target %d: URL %q is not an http(s) base URL", i, t.URL)
		}
		if t.Store != "" {
			if err := events.ValidToken(t.Store); err != nil {
				bad("target %d: store %q: %v", i, t.Store, err)
			}
		}
		if t.Device != "" {
			if err := events.ValidToken(t.Device); err != nil {
				bad("target %d: device %q: %v", i, t.Device, err)
			}
		}
		o.Targets[i].URL = strings.TrimRight(t.URL, "/")
	}
	if len(o.SKUs) == 0 {
		bad("no SKUs")
	}
	seen := make(map[string]bool, len(o.SKUs))
	for _, s := range o.SKUs {
		if err := events.ValidSKU(s); err != nil {
			bad("SKU %q: %v", s, err)
		}
		if seen[s] {
			bad("SKU %q listed twice", s)
		}
		seen[s] = true
	}
	if o.Zipf == 0 {
		o.Zipf = DefaultZipf
	}
	if o.Zipf <= 1 {
		bad("Zipf exponent %v must be > 1", o.Zipf)
	}
	if o.RunID == "" {
		o.RunID = runID(time.Now())
	}
	if len(o.RunID) > 16 || events.ValidToken(o.RunID) != nil {
		bad("RunID %q: 1 to 16 letters, digits, '-' or '_'", o.RunID)
	}
	if o.Rate < 0 || o.Workers < 0 || o.Duration < 0 || o.Events < 0 || o.Diurnal < 0 {
		bad("Rate, Workers, Duration, Events and Diurnal must not be negative")
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.Mix == (Mix{}) {
		o.Mix = DefaultMix()
	}
	m := o.Mix
	for _, w := range []float64{m.Sale, m.Return, m.Receipt, m.Adjust, m.Count, m.Reservation, m.Review, m.Scan} {
		if w < 0 {
			bad("Mix weights must not be negative")
			break
		}
	}
	if len(o.Products) == 0 {
		o.Mix.Review = 0
	}
	if m := o.Mix; m.Sale+m.Return+m.Receipt+m.Adjust+m.Count+m.Reservation+m.Review+m.Scan <= 0 {
		bad("Mix has no weight (reviews need Products)")
	}
	for i, w := range o.Offline {
		if w.Target < 0 || w.Target >= len(o.Targets) {
			bad("offline window %d: target %d out of range", i, w.Target)
		}
		if w.Start < 0 || w.End <= w.Start {
			bad("offline window %d: %v to %v is empty", i, w.Start, w.End)
		}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.Backoff)
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// runID names a run after its start time, in base 36 milliseconds.
func runID(t time.Time) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	n := uint64(t.UnixMilli())
	var b []byte
	for n > 0 {
		b = append([]byte{digits[n%36]}, b...)
		n /= 36
	}
	return string(b)
}

// UseCatalog sets SKUs, Products, Prices and GTINs from a catalog's
// variants, in catalog order.
func (o *Options) UseCatalog(variants []catalog.Variant) {
	o.SKUs = make([]string, 0, len(variants))
	o.Products = make(map[string]string, len(variants))
	o.Prices = make(map[string]int64, len(variants))
	o.GTINs = make(map[string]string, len(variants))
	for _, v := range variants {
		o.SKUs = append(o.SKUs, v.SKU)
		o.Products[v.SKU] = v.ProductID
		o.Prices[v.SKU] = v.PriceMinor
		if len(v.GTINs) > 0 {
			o.GTINs[v.SKU] = v.GTINs[0]
		}
	}
}

// ReadCatalog reads a catalog file (CSV or JSON Lines, detected from its
// name and content) the way an import would; any bad row fails it.
func ReadCatalog(path string) ([]catalog.Variant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	format, err := catalog.DetectFormat(filepath.Base(path), head[:n])
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []catalog.Variant
	rep, err := catalog.Parse(f, format, catalog.Options{}, func(v catalog.Variant) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		if len(rep.Errors) > 0 {
			e := rep.Errors[0]
			return nil, fmt.Errorf("catalog %s: %w (first: line %d: %s: %s)", path, err, e.Line, e.Field, e.Reason)
		}
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("catalog %s: no variants", path)
	}
	return out, nil
}
