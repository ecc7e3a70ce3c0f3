package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/profile"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
	"github.com/omnisync/omnisync/edge/internal/devices/serialport"
	"github.com/omnisync/omnisync/edge/internal/presence"
	"github.com/omnisync/omnisync/edge/internal/scanstream"
	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/events"
)

// Sink receives the events devices produce (the outbox).
type Sink interface {
	Append(ctx context.Context, drafts []events.Draft) ([]events.Envelope, error)
}

// Options configures a Manager.
type Options struct {
	Devices     []Config
	ProfilesDir string
	Sink        Sink
	// Scans receives parsed scans and fitting-room arrivals; may be nil.
	Scans  *scanstream.Broker
	Logger *slog.Logger
	Now    func() time.Time
	// StallAfter overrides the ports' silent-device check period (tests).
	StallAfter time.Duration
	// TickEvery is how often RFID presences are expired and idle framers
	// flushed (default 250ms).
	TickEvery time.Duration
	// Catalog, when set, names the product behind a GTIN: scans carry it
	// on the scan stream and in their events, and sweep counts are recorded
	// per SKU. May be nil (no catalog yet: counts go by GTIN).
	Catalog Catalog
	// Carts, when set, takes the cart codes scanners read (a shopper's
	// phone showing her cart): they go to the till's cart, never to the
	// product lookup or the scan events. Called without locks held.
	Carts func(device, code string)
	// Places, when set, keeps where items were last seen: what each sweep
	// with an area read outside the fitting rooms, and the units carried
	// into a fitting room (no longer where they were swept). Called
	// without locks held. May be nil.
	Places Places
}

// Places is told where items were seen (edge/internal/whereabouts).
type Places interface {
	Swept(ctx context.Context, area string, seen []whereabouts.Sighting) error
	Entered(ctx context.Context, units []whereabouts.Unit) error
}

// Catalog maps a GTIN-14 to the store's product.
type Catalog interface {
	ProductForGTIN(gtin string) (ProductRef, bool)
}

// ProductRef is the product a scan identified, as the scan stream shows it.
type ProductRef struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Brand      string `json:"brand,omitempty"`
	Size       string `json:"size,omitempty"`
	Colour     string `json:"colour,omitempty"`
	PriceMinor int64  `json:"price_minor"`
	Currency   string `json:"currency,omitempty"`
	ImageURL   string `json:"image_url,omitempty"`
}

// Manager owns every configured device.
type Manager struct {
	o    Options
	log  *slog.Logger
	devs []*device
}

// New loads every device's profile and prepares its port; nothing is opened
// until Run. A device whose profile is missing or invalid fails New with the
// device, the file and the key named: a store that configured a scanner
// wants to hear at start-up that it will not work.
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TickEvery <= 0 {
		o.TickEvery = 250 * time.Millisecond
	}
	if o.Sink == nil {
		return nil, errors.New("devices: Options.Sink is required")
	}
	if err := validate(o.Devices); err != nil {
		return nil, err
	}
	m := &Manager{o: o, log: o.Logger}
	decoder := rfid.NewDecoder(0)
	for _, c := range o.Devices {
		d, err := newDevice(o, c, decoder)
		if err != nil {
			return nil, err
		}
		m.devs = append(m.devs, d)
	}
	return m, nil
}

func newDevice(o Options, c Config, decoder *rfid.Decoder) (*device, error) {
	p, err := profile.Load(o.ProfilesDir, c.Profile)
	if err != nil {
		return nil, fmt.Errorf("%w: device %s: profile %q: %w", ErrConfig, c.Name, c.Profile, err)
	}
	fr, err := p.NewFramer()
	if err != nil {
		return nil, fmt.Errorf("%w: device %s: %w", ErrConfig, c.Name, err)
	}
	log := o.Logger.With("device", c.Name, "profile", p.Name)
	port, err := serialport.New(serialport.Config{
		Name: c.Name, Path: c.Port,
		Baud: p.Serial.Baud, DataBits: p.Serial.DataBits, Parity: p.Serial.ParityByte(), StopBits: p.Serial.StopBits,
		ReadTimeout: p.Serial.ReadTimeout, StallAfter: o.StallAfter,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: device %s: %w", ErrConfig, c.Name, err)
	}
	d := &device{cfg: c, prof: p, port: port, log: log, o: o, framer: fr, rejects: map[string]uint64{}, decoder: decoder}
	switch p.Meaning {
	case profile.MeaningRFID:
		zones := make([]rfid.Zone, 0, len(c.Zones))
		for _, z := range c.Zones {
			zones = append(zones, rfid.Zone{Name: z.Name, Reader: c.Name, Antennas: z.Antennas,
				EnterAfter: z.EnterAfter, LeaveAfter: z.LeaveAfter, MinRSSI: z.MinRSSI})
		}
		d.roomAntennas = map[int]bool{}
		for _, z := range c.Zones {
			for _, a := range z.Antennas {
				d.roomAntennas[a] = true
			}
		}
		if len(zones) > 0 {
			d.smoother, err = rfid.New(rfid.Config{Zones: zones, Decoder: decoder})
			if err != nil {
				return nil, fmt.Errorf("%w: device %s: zones: %w", ErrConfig, c.Name, err)
			}
			rooms := make([]presence.Room, 0, len(c.Zones))
			for _, z := range c.Zones {
				rooms = append(rooms, presence.Room{Name: z.Name, Reader: c.Name, Antennas: z.Antennas})
			}
			d.scorer, err = presence.New(presence.Config{Rooms: rooms})
			if err != nil {
				return nil, fmt.Errorf("%w: device %s: zones: %w", ErrConfig, c.Name, err)
			}
			d.scored = map[string]rfid.Item{}
		}
	case profile.MeaningBarcode:
		if len(c.Zones) > 0 {
			return nil, fmt.Errorf("%w: device %s: zones are for RFID readers, %s is a barcode profile", ErrConfig, c.Name, p.Name)
		}
	}
	return d, nil
}

// Run runs every device until ctx ends. A device never makes it return.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, d := range m.devs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := d.port.Run(ctx, d.onData, d.onState); err != nil {
				m.log.Error("device stopped", "device", d.cfg.Name, "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			d.tickLoop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Close closes every port (bounded by their read timeouts).
func (m *Manager) Close() error {
	var errs []error
	for _, d := range m.devs {
		errs = append(errs, d.port.Close())
	}
	return errors.Join(errs...)
}

// Status is one device in GET /v1/devices.
type Status struct {
	Name           string            `json:"name"`
	Port           string            `json:"port"`
	ResolvedPort   string            `json:"resolved_port,omitempty"`
	Profile        string            `json:"profile"`
	Meaning        string            `json:"meaning"`
	State          string            `json:"state"`
	Opens          uint64            `json:"opens"`
	Reopens        uint64            `json:"reopens"`
	BytesRead      uint64            `json:"bytes_read"`
	FramesRead     uint64            `json:"frames_read"`
	FramesRejected uint64            `json:"frames_rejected"`
	Rejects        map[string]uint64 `json:"rejects,omitempty"`
	Scans          uint64            `json:"scans,omitempty"`
	TagReads       uint64            `json:"tag_reads,omitempty"`
	Enters         uint64            `json:"enters,omitempty"`
	Leaves         uint64            `json:"leaves,omitempty"`
	// EventsLost counts events the outbox refused (full disk budget).
	EventsLost  uint64     `json:"events_lost,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastFrameAt *time.Time `json:"last_frame_at,omitempty"`
	// Present lists the items in each fitting-room zone now: those whose
	// presence score there reached the threshold (edge/internal/presence).
	Present map[string][]PresentItem `json:"present,omitempty"`
	// Scores lists every tag each zone's antennas read recently, shown or
	// not, best first (at most 200 per zone).
	Scores map[string][]TagScore `json:"scores,omitempty"`
}

// PresentItem is one item in a fitting room.
type PresentItem struct {
	GTIN   string    `json:"gtin"`
	Serial string    `json:"serial,omitempty"`
	EPC    string    `json:"epc"`
	Since  time.Time `json:"since"`
	// Score is its presence score in the zone, in [0, 1].
	Score float64 `json:"score"`
}

// TagScore is one tag's presence score in one zone.
type TagScore struct {
	GTIN   string  `json:"gtin"`
	Serial string  `json:"serial,omitempty"`
	EPC    string  `json:"epc"`
	Score  float64 `json:"score"`
	Shown  bool    `json:"shown"`
	// RSSI is the smoothed signal in dBm (0 unknown); ReadsPerSecond the
	// decayed read rate; DwellMS the current streak of reads.
	RSSI           float64 `json:"rssi,omitempty"`
	ReadsPerSecond float64 `json:"reads_per_second"`
	DwellMS        int64   `json:"dwell_ms"`
}

// Statuses returns every device's status, in configuration order.
func (m *Manager) Statuses() []Status {
	out := make([]Status, 0, len(m.devs))
	for _, d := range m.devs {
		out = append(out, d.status())
	}
	return out
}

// ServeHTTP answers GET /v1/devices.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"devices": m.Statuses()})
}

// device is one configured device at run time.
type device struct {
	cfg  Config
	prof *profile.Profile
	port *serialport.Port
	log  *slog.Logger
	o    Options

	mu       sync.Mutex // guards everything below; never held while appending
	framer   framing.Framer
	smoother *rfid.Smoother
	// scorer decides which items the mirror shows in each room (presence
	// scores); the smoother makes the enter and leave events.
	scorer *presence.Scorer
	scored map[string]rfid.Item // scorer key (GTIN/serial) → item
	// occupied counts the items present per zone; visits names each
	// zone's current visit.
	occupied   map[string]int
	visits     map[string]string
	reads      []rfid.TagRead
	frames     uint64
	rejected   uint64
	rejects    map[string]uint64
	scans      uint64
	tagReads   uint64
	enters     uint64
	leaves     uint64
	lost       uint64
	lastErr    string
	lastErrAt  time.Time
	lastFrame  time.Time
	lastByte   time.Time
	pending    bool // bytes fed since the last frame or flush
	lastPollAt time.Time
	sweep      *rfid.Sweep // the stock sweep in progress, if any
	decoder    *rfid.Decoder
	out        []events.Draft    // events produced by the current callback
	published  []scanstream.Scan // scans produced by the current callback
	// carts are the cart codes of the current callback; pendingCarts
	// those taken and not yet handed to Options.Carts.
	carts, pendingCarts []string

	// swept is what the sweep reads outside the fitting rooms
	// (roomAntennas), for Options.Places; entered the units read into a
	// room since the last delivery.
	swept        *sightings
	roomAntennas map[int]bool
	entered      []whereabouts.Unit
}

func (d *device) onState(st serialport.Status) {
	d.mu.Lock()
	if st.State == serialport.StateOpen || st.State == serialport.StateReopening {
		// A new stream starts (or the old one ended): a partial frame can
		// never be completed, so drop it rather than glue it to the next.
		d.framer.Flush(d.emit, d.reject)
		d.pending = false
	}
	if st.LastError != "" && st.State != serialport.StateOpen {
		d.lastErr, d.lastErrAt = st.LastError, d.o.Now()
	}
	if st.State != serialport.StateClosed {
		// Closed only happens when the agent stops: nothing to tell the hub.
		d.out = append(d.out, d.statusDraft(st))
	}
	out, pub := d.take()
	d.mu.Unlock()
	if st.State == serialport.StateOpen {
		d.poll(true)
	}
	d.deliver(out, pub)
}

func (d *device) statusDraft(st serialport.Status) events.Draft {
	body := events.DeviceStatus{Name: d.cfg.Name, State: string(st.State)}
	if st.State != serialport.StateOpen {
		body.Detail = st.LastError
	}
	b, _ := json.Marshal(body)
	return events.Draft{Kind: events.KindDeviceStatus, Data: b}
}

func (d *device) onData(chunk []byte) {
	d.mu.Lock()
	d.lastByte = d.o.Now()
	d.pending = true
	d.framer.Feed(chunk, d.emit, d.reject)
	out, pub := d.take()
	d.mu.Unlock()
	d.deliver(out, pub)
}

// take hands over what the current callback produced. d.mu is held.
func (d *device) take() ([]events.Draft, []scanstream.Scan) {
	out, pub := d.out, d.published
	d.out, d.published = nil, nil
	if len(d.carts) > 0 {
		codes := d.carts
		d.carts = nil
		if d.o.Carts != nil {
			// Handed over with the scans, outside d.mu (deliver).
			d.pendingCarts = append(d.pendingCarts, codes...)
		}
	}
	return out, pub
}

// cartCode reports whether a barcode frame is a cart's handoff code, with
// or without an AIM symbology identifier, and returns the code.
func cartCode(frame []byte) (string, bool) {
	s := strings.TrimSpace(string(frame))
	if len(s) > 3 && s[0] == ']' {
		s = s[3:]
	}
	return s, cartcode.IsCode(s)
}

// deliver appends events to the outbox and publishes scans, without d.mu.
func (d *device) deliver(out []events.Draft, pub []scanstream.Scan) {
	d.mu.Lock()
	codes := d.pendingCarts
	d.pendingCarts = nil
	entered := d.entered
	d.entered = nil
	d.mu.Unlock()
	for _, code := range codes {
		d.o.Carts(d.cfg.Name, code)
	}
	if len(entered) > 0 {
		// One bbolt write (and fsync) on this read goroutine, outside the
		// device lock; bbolt does not watch a context, so none bounds it.
		if err := d.o.Places.Entered(context.Background(), entered); err != nil {
			d.log.Warn("units entering fitting rooms not recorded", "units", len(entered), "err", err)
		}
	}
	for _, s := range pub {
		if d.o.Scans != nil {
			d.o.Scans.Publish(s)
		}
	}
	if len(out) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.o.Sink.Append(ctx, out); err != nil {
		d.mu.Lock()
		d.lost += uint64(len(out))
		d.mu.Unlock()
		d.log.Warn("device events not recorded", "events", len(out), "err", err)
	}
}

// product looks gtin up in the catalog, if there is one. It is a local
// read (the agent's cache), cheap enough to do under d.mu.
func (d *device) product(gtin string) (ProductRef, bool) {
	if d.o.Catalog == nil || gtin == "" {
		return ProductRef{}, false
	}
	return d.o.Catalog.ProductForGTIN(gtin)
}

// emit handles one frame. d.mu is held.
func (d *device) emit(frame []byte) {
	d.frames++
	d.pending = false
	now := d.o.Now()
	d.lastFrame = now
	switch d.prof.Meaning {
	case profile.MeaningBarcode:
		if code, ok := cartCode(frame); ok {
			// A cart's handoff code: for the till, not a product. The
			// scan stream says so (the till page reacts); no scan event
			// carries it (it is a cart snapshot, not a look-up).
			d.scans++
			d.published = append(d.published, scanstream.Scan{Device: d.cfg.Name, At: now, Raw: code, Cart: true})
			d.carts = append(d.carts, code)
			return
		}
		sc, err := d.prof.ParseBarcode(frame)
		if err != nil {
			d.rejectFrame("barcode", err)
			return
		}
		d.scans++
		st := toStream(d.cfg.Name, now, sc)
		body := map[string]any{"code": sc.Raw, "device": d.cfg.Name}
		if ref, ok := d.product(sc.GTIN); ok {
			st.Product, body["sku"] = ref, ref.SKU
		}
		d.published = append(d.published, st)
		if sym := sc.Symbology.String(); sym != "" {
			body["symbology"] = sym
		}
		if sc.GTIN != "" {
			body["gtin"] = sc.GTIN
		}
		if len(sc.AIs) > 0 {
			body["ais"] = aiMap(sc)
		}
		b, _ := json.Marshal(body)
		d.out = append(d.out, events.Draft{Kind: events.KindScan, Data: b})
	case profile.MeaningRFID:
		reads, err := d.prof.DecodeTags(frame, d.reads[:0])
		d.reads = reads
		if err != nil {
			d.rejectFrame("rfid", err)
			return
		}
		for i := range reads {
			reads[i].Reader, reads[i].At = d.cfg.Name, now
		}
		d.tagReads += uint64(len(reads))
		if d.sweep != nil && len(reads) > 0 {
			_ = d.sweep.Observe(reads...) // a full sweep says so at End
			if d.swept != nil {
				d.sight(reads)
			}
		}
		if d.smoother != nil && len(reads) > 0 {
			d.presences(d.smoother.Observe(reads...))
			d.score(reads)
		}
	}
}

// score feeds decodable item reads to the presence scorer. d.mu is held.
func (d *device) score(reads []rfid.TagRead) {
	for _, r := range reads {
		it, err := d.decoder.Decode(r.EPC)
		if err != nil {
			continue // counted by the smoother
		}
		key := it.GTIN + "/" + it.Serial
		if _, ok := d.scored[key]; !ok {
			d.scored[key] = it
		}
		d.scorer.Observe(presence.Read{Key: key, Reader: r.Reader, Antenna: r.Antenna, RSSI: r.RSSI, At: r.At})
	}
}

// visitOf returns the visit an enter or leave in zone belongs to: a new
// one starts when an item enters an empty room. d.mu is held.
func (d *device) visitOf(p rfid.Presence) string {
	if d.occupied == nil {
		d.occupied, d.visits = map[string]int{}, map[string]string{}
	}
	z := p.Zone
	if p.Change == rfid.Enter {
		if d.occupied[z] == 0 {
			d.visits[z] = fmt.Sprintf("%.48s-%d", z, p.At.UnixMilli())
		}
		d.occupied[z]++
		return d.visits[z]
	}
	v := d.visits[z]
	if d.occupied[z] > 0 {
		d.occupied[z]--
	}
	return v
}

// presences turns smoother output into events. d.mu is held.
func (d *device) presences(ps []rfid.Presence) {
	for _, p := range ps {
		kind, body := p.Event()
		body.Visit = d.visitOf(p)
		data, err := json.Marshal(body)
		if err != nil {
			d.log.Warn("presence not recorded", "err", err)
			continue
		}
		d.out = append(d.out, events.Draft{Kind: kind, Data: data})
		if p.Change == rfid.Enter {
			d.enters++
			if d.o.Places != nil && p.Item.Serial != "" {
				d.entered = append(d.entered, whereabouts.Unit{GTIN: p.Item.GTIN, Serial: p.Item.Serial})
			}
			st := scanstream.Scan{Device: d.cfg.Name, At: p.At, Raw: p.Item.EPC,
				Symbology: "rfid:" + p.Zone, GS1: true, GTIN: p.Item.GTIN, EPC: p.Item.EPC, Serial: p.Item.Serial}
			if ref, ok := d.product(p.Item.GTIN); ok {
				st.Product = ref
			}
			d.published = append(d.published, st)
		} else {
			d.leaves++
		}
	}
}

// reject counts discarded bytes. d.mu is held.
func (d *device) reject(r framing.Reject, n int) {
	d.rejected++
	d.rejects[r.Kind.String()]++
	d.lastErr, d.lastErrAt = fmt.Sprintf("%s (%d bytes)", r, n), d.o.Now()
}

// rejectFrame counts a frame that framed but did not decode. d.mu is held.
func (d *device) rejectFrame(what string, err error) {
	d.rejected++
	d.rejects[what+"_invalid"]++
	d.lastErr, d.lastErrAt = err.Error(), d.o.Now()
	d.log.Debug("frame rejected", "err", err)
}

// tickLoop expires fitting-room presences, flushes a framer whose line went
// idle mid-frame, and polls readers that must be asked for tags.
func (d *device) tickLoop(ctx context.Context) {
	t := time.NewTicker(d.o.TickEvery)
	defer t.Stop()
	idle := 2 * max(d.prof.Serial.ReadTimeout, 100*time.Millisecond)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := d.o.Now()
		d.mu.Lock()
		if d.pending && now.Sub(d.lastByte) > idle {
			d.framer.Flush(d.emit, d.reject)
			d.pending = false
		}
		if d.smoother != nil {
			d.presences(d.smoother.Tick(now))
			d.scorer.Tick(now)
			if len(d.scored) > 4*maxScoredPerZone*len(d.cfg.Zones) {
				d.forgetScored()
			}
		}
		out, pub := d.take()
		d.mu.Unlock()
		d.deliver(out, pub)
		d.poll(false)
	}
}

// poll sends an RFID profile's inventory command when it is due.
func (d *device) poll(justOpened bool) {
	if d.prof.RFID == nil || d.prof.RFID.Poll == nil {
		return
	}
	p := d.prof.RFID.Poll
	now := d.o.Now()
	d.mu.Lock()
	due := justOpened || (p.Every > 0 && now.Sub(d.lastPollAt) >= p.Every)
	if due {
		d.lastPollAt = now
	}
	d.mu.Unlock()
	if !due {
		return
	}
	if _, err := d.port.Write(p.Frame); err != nil && !errors.Is(err, serialport.ErrNotOpen) {
		d.log.Debug("poll command not sent", "err", err)
	}
}

func (d *device) status() Status {
	ps := d.port.Status()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{
		Name: d.cfg.Name, Port: d.cfg.Port, ResolvedPort: ps.ResolvedPath, Profile: d.prof.Name, Meaning: d.prof.Meaning,
		State: string(ps.State), Opens: ps.Opens, Reopens: ps.Reopens, BytesRead: ps.BytesRead,
		FramesRead: d.frames, FramesRejected: d.rejected, Scans: d.scans, TagReads: d.tagReads,
		Enters: d.enters, Leaves: d.leaves, EventsLost: d.lost,
	}
	if len(d.rejects) > 0 {
		s.Rejects = make(map[string]uint64, len(d.rejects))
		for k, v := range d.rejects {
			s.Rejects[k] = v
		}
	}
	// The most recent problem, from the port or from the data.
	lastErr, lastAt := d.lastErr, d.lastErrAt
	if ps.LastError != "" && ps.LastErrorAt.After(lastAt) {
		lastErr, lastAt = ps.LastError, ps.LastErrorAt
	}
	if lastErr != "" {
		s.LastError = lastErr
		t := lastAt.UTC()
		s.LastErrorAt = &t
	}
	if !d.lastFrame.IsZero() {
		t := d.lastFrame.UTC()
		s.LastFrameAt = &t
	}
	if d.scorer != nil {
		s.Present = map[string][]PresentItem{}
		s.Scores = map[string][]TagScore{}
		for _, z := range d.cfg.Zones {
			items := []PresentItem{}
			scores := []TagScore{}
			for _, sc := range d.scorer.Scores(z.Name) {
				it := d.scored[sc.Key]
				if sc.Shown {
					items = append(items, PresentItem{GTIN: it.GTIN, Serial: it.Serial, EPC: it.EPC, Since: sc.Since.UTC(), Score: sc.Score})
				}
				if len(scores) < maxScoredPerZone {
					scores = append(scores, TagScore{GTIN: it.GTIN, Serial: it.Serial, EPC: it.EPC, Score: sc.Score, Shown: sc.Shown,
						RSSI: sc.RSSI, ReadsPerSecond: sc.Rate, DwellMS: sc.Dwell.Milliseconds()})
				}
			}
			sort.Slice(items, func(i, j int) bool { return items[i].Since.Before(items[j].Since) })
			s.Present[z.Name] = items
			s.Scores[z.Name] = scores
		}
	}
	return s
}

// maxScoredPerZone bounds the scores a zone lists in /v1/devices.
const maxScoredPerZone = 200

// forgetScored drops the items the scorer no longer tracks. d.mu is held.
func (d *device) forgetScored() {
	live := map[string]bool{}
	for _, z := range d.cfg.Zones {
		for _, sc := range d.scorer.Scores(z.Name) {
			live[sc.Key] = true
		}
	}
	for k := range d.scored {
		if !live[k] {
			delete(d.scored, k)
		}
	}
}

// Present returns the items in every fitting-room zone now, across the
// store's RFID readers (the kiosk's mirror pages show them).
func (m *Manager) Present() map[string][]PresentItem {
	out := map[string][]PresentItem{}
	for _, st := range m.Statuses() {
		for zone, items := range st.Present {
			out[zone] = append(out[zone], items...)
		}
	}
	return out
}

func toStream(device string, at time.Time, sc profile.Scan) scanstream.Scan {
	s := scanstream.Scan{Device: device, At: at, Raw: sc.Raw, Symbology: sc.Symbology.String(), GS1: sc.GS1, GTIN: sc.GTIN}
	if len(sc.AIs) > 0 {
		s.AIs = aiMap(sc)
	}
	if sc.DigitalLink != nil {
		if uri, err := sc.DigitalLink.URI(); err == nil {
			s.DigitalLink = uri
		}
	}
	return s
}

func aiMap(sc profile.Scan) map[string]string {
	m := make(map[string]string, len(sc.AIs))
	for _, a := range sc.AIs {
		m[a.AI] = a.Value
	}
	return m
}
