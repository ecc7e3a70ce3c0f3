// Package heartbeat answers store agents' heartbeats for one hub replica
// and keeps what they report without a database write per heartbeat.
//
// Every agent heartbeats every few seconds, so a chain of 2,000 stores
// sends hundreds a second, and one upsert each (a commit and a WAL flush)
// would be the busiest thing the hub's database does. Instead the replica
// that receives a heartbeat (NATS spreads them over the replicas' queue
// group) keeps the newest of each device in memory, and Run writes what
// arrived since the last flush in one multi-row upsert every FlushEvery.
// The upsert keeps each device's newest heartbeat by hub time, so replicas
// flushing in any order agree.
//
// The price: the database, and so GET /v1/stores and the dashboard, lag by
// up to FlushEvery, which must stay well inside the window in which they
// still call a device connected (20 s, four agent heartbeats); New refuses
// more than MaxFlushEvery. A replica that dies loses its unflushed
// heartbeats; the agents' next ones, a few seconds later, replace them.
// Run flushes once more when it ends.
//
// The reply carries the device's watermarks, which let its agent delete
// events from its outbox. Only the database knows them for sure (every
// replica applies batches), but a watermark this replica committed itself
// (Learn) or read earlier is a safe answer: watermarks only grow, and an
// agent keeps the highest it hears. So the database is read only when the
// agent could learn something from it, when it reports unconfirmed events
// beyond what this replica knows to be committed; see needsRead.
package heartbeat

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Store is what the service needs from the hub's store.
type Store interface {
	RecordHeartbeats(ctx context.Context, hbs []store.Heartbeat) error
	Watermarks(ctx context.Context, store, device string) ([]store.Watermark, error)
}

var _ Store = (*store.Store)(nil)

const (
	// DefaultFlushEvery is how often heartbeats are written by default.
	DefaultFlushEvery = 2 * time.Second
	// MaxFlushEvery is the longest flush interval New accepts: a quarter
	// of the 20 s in which the API still shows a device as connected.
	MaxFlushEvery = 5 * time.Second
	// MaxBodyBytes bounds a heartbeat request.
	MaxBodyBytes = 64 << 10
	// epochsKept bounds the watermarks remembered per device: the newest
	// epochs (a device gets a new one only when its outbox is re-created).
	epochsKept = 4
)

// ErrInvalidOption is returned by New for options it cannot run with.
var ErrInvalidOption = errors.New("heartbeat: invalid option")

// Options configures a Service.
type Options struct {
	Store Store
	// FlushEvery is how often the heartbeats received are written
	// [DefaultFlushEvery, at most MaxFlushEvery].
	FlushEvery time.Duration
	Logger     *slog.Logger
	// Now is the hub's clock [time.Now].
	Now func() time.Time
}

// Stats counts what a Service did.
type Stats struct {
	// Received counts valid heartbeats; Pending those not yet written.
	Received uint64
	Pending  int
	// Flushes counts successful writes, Rows the heartbeats they wrote,
	// FlushErrors the failed ones (retried at the next flush).
	Flushes, Rows, FlushErrors uint64
	// WatermarkReads counts heartbeats answered from the database;
	// the others were answered from memory.
	WatermarkReads uint64
}

type devKey struct{ store, device string }

// Service answers heartbeats and flushes them; see the package comment.
// Its methods are safe for concurrent use.
type Service struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	pending map[devKey]store.Heartbeat
	// known holds committed watermarks: device -> epoch -> seq.
	known map[devKey]map[uint64]uint64

	// flushMu makes flushes one at a time, so a slow one cannot be
	// overtaken by the next with older rows.
	flushMu sync.Mutex

	received, flushes, rows, flushErrors, reads atomic.Uint64
}

// New checks the options; nothing runs until Run.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidOption)
	}
	if o.FlushEvery == 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.FlushEvery < 0 || o.FlushEvery > MaxFlushEvery {
		return nil, fmt.Errorf("%w: FlushEvery %v must be positive and at most %v", ErrInvalidOption, o.FlushEvery, MaxFlushEvery)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, log: o.Logger, pending: map[devKey]store.Heartbeat{}, known: map[devKey]map[uint64]uint64{}}, nil
}

// Handle answers one heartbeat request that arrived on subject: it keeps
// the heartbeat for the next flush and replies with the device's
// watermarks. A request that is not a valid heartbeat of the device its
// subject names gets a reply with Error set and changes nothing.
func (s *Service) Handle(ctx context.Context, subject string, data []byte) syncproto.HeartbeatReply {
	now := s.o.Now()
	reply := func(rep syncproto.HeartbeatReply) syncproto.HeartbeatReply {
		// Stamped as it leaves, after any database read: the agent
		// takes half the round trip as the reply's time in flight.
		rep.HubTimeMS = s.o.Now().UnixMilli()
		return rep
	}
	storeID, device, ok := subjects.ParseHubSync(subject)
	if !ok {
		return reply(syncproto.HeartbeatReply{Error: "bad subject"})
	}
	var hb syncproto.Heartbeat
	if len(data) > MaxBodyBytes || json.Unmarshal(data, &hb) != nil {
		return reply(syncproto.HeartbeatReply{Error: "malformed heartbeat"})
	}
	if hb.Store != storeID || hb.Device != device || events.ValidToken(storeID) != nil || events.ValidToken(device) != nil {
		return reply(syncproto.HeartbeatReply{Error: "heartbeat store/device do not match its subject"})
	}
	s.record(store.Heartbeat{
		Store: storeID, Device: device, Version: hb.Version, Epoch: hb.Epoch, Backlog: hb.Backlog,
		OldestUnackedAge: time.Duration(hb.OldestUnackedMS) * time.Millisecond,
		ClockSkew:        time.Duration(now.UnixMilli()-hb.AgentTimeMS) * time.Millisecond,
		Connected:        true, At: now,
		Unsynced: store.UnsyncedSales{Count: max(hb.UnsyncedSales, 0), Value: max(hb.UnsyncedSalesValue, 0),
			OldestAge: time.Duration(max(hb.OldestUnsyncedSaleMS, 0)) * time.Millisecond},
	})
	wms, err := s.watermarks(ctx, devKey{storeID, device}, hb)
	if err != nil {
		s.log.Warn("heartbeat: watermarks unavailable", "store", storeID, "device", device, "err", err)
		return reply(syncproto.HeartbeatReply{Error: "watermarks unavailable"})
	}
	return reply(syncproto.HeartbeatReply{Watermarks: wms})
}

// record keeps hb for the next flush unless a newer one of its device is
// already waiting.
func (s *Service) record(hb store.Heartbeat) {
	s.received.Add(1)
	k := devKey{hb.Store, hb.Device}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.pending[k]; !ok || !hb.At.Before(old.At) {
		s.pending[k] = hb
	}
}

// needsRead reports whether the database might tell the agent of hb more
// than the committed watermark this replica knows for its epoch (known,
// 0 when it knows none): only when the agent has unconfirmed events
// (Backlog) and has had some published beyond known. An agent that does
// not report what it published (PublishedSeq 0) with a backlog is always
// answered from the database.
func needsRead(hb syncproto.Heartbeat, known uint64, ok bool) bool {
	if hb.Backlog <= 0 {
		return false
	}
	return !ok || hb.PublishedSeq == 0 || known < hb.PublishedSeq
}

// watermarks returns the watermarks to answer hb with, reading the
// database only when needsRead says so.
func (s *Service) watermarks(ctx context.Context, k devKey, hb syncproto.Heartbeat) ([]syncproto.Watermark, error) {
	s.mu.Lock()
	seq, ok := s.known[k][hb.Epoch]
	s.mu.Unlock()
	if needsRead(hb, seq, ok) {
		s.reads.Add(1)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		wms, err := s.o.Store.Watermarks(rctx, k.store, k.device)
		cancel()
		if err != nil {
			return nil, err
		}
		s.Learn(wms)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]syncproto.Watermark, 0, len(s.known[k]))
	for epoch, seq := range s.known[k] {
		out = append(out, syncproto.Watermark{Epoch: epoch, Seq: seq})
	}
	slices.SortFunc(out, func(a, b syncproto.Watermark) int { return cmp.Compare(a.Epoch, b.Epoch) })
	return out, nil
}

// Learn remembers committed watermarks: what a batch this replica applied
// left (store.BatchResult.Watermarks) or what the database said. Only
// ever pass watermarks that are committed; a lower one than already known
// changes nothing. It does not block for long: call it from the apply
// path.
func (s *Service) Learn(wms []store.Watermark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range wms {
		k := devKey{w.Store, w.Device}
		m := s.known[k]
		if m == nil {
			m = map[uint64]uint64{}
			s.known[k] = m
		}
		if cur, ok := m[w.Epoch]; !ok || w.Seq > cur {
			m[w.Epoch] = w.Seq
		}
		for len(m) > epochsKept {
			// Epochs are minted from the clock: the lowest is the oldest.
			delete(m, slices.Min(slices.Collect(maps.Keys(m))))
		}
	}
}

// Flush writes the heartbeats received since the last flush, in one
// statement. If the write fails they are kept (unless a newer one of the
// same device arrived meanwhile) for the next flush.
func (s *Service) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := s.pending
	s.pending = make(map[devKey]store.Heartbeat, len(batch))
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	hbs := make([]store.Heartbeat, 0, len(batch))
	for _, hb := range batch {
		hbs = append(hbs, hb)
	}
	if err := s.o.Store.RecordHeartbeats(ctx, hbs); err != nil {
		s.flushErrors.Add(1)
		s.mu.Lock()
		for k, hb := range batch {
			if cur, ok := s.pending[k]; !ok || cur.At.Before(hb.At) {
				s.pending[k] = hb
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("heartbeat: flush %d heartbeats: %w", len(hbs), err)
	}
	s.flushes.Add(1)
	s.rows.Add(uint64(len(hbs)))
	return nil
}

// Run flushes every FlushEvery until ctx ends, then once more, and
// returns nil. A failed flush is logged and retried at the next.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.FlushEvery)
	defer t.Stop()
	flush := func(ctx context.Context) {
		// Bounded, so a hung database does not hold the heartbeats of
		// several intervals in one attempt.
		fctx, cancel := context.WithTimeout(ctx, max(10*time.Second, 2*s.o.FlushEvery))
		defer cancel()
		if err := s.Flush(fctx); err != nil {
			s.log.Warn("heartbeats not written; retrying at the next flush", "err", err, "pending", s.Stats().Pending)
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			flush(ctx)
		}
	}
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	pending := len(s.pending)
	s.mu.Unlock()
	return Stats{
		Received: s.received.Load(), Pending: pending,
		Flushes: s.flushes.Load(), Rows: s.rows.Load(), FlushErrors: s.flushErrors.Load(),
		WatermarkReads: s.reads.Load(),
	}
}
