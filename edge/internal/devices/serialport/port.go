package serialport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/tarm/serial"

	"github.com/omnisync/omnisync/shared/retry"
)

// State is where a Port is in its life. The agent reports it in GET /v1/devices
// and in device_status events.
type State string

// States of a Port.
const (
	// StateClosed: not running (before Run, after Run returned).
	StateClosed State = "closed"
	// StateOpen: the device is open and being read.
	StateOpen State = "open"
	// StateReopening: the device is absent or was lost; Run retries with backoff.
	StateReopening State = "reopening"
	// StateFailed: retrying cannot fix it (the path is not a terminal, the driver
	// rejects the settings). Run stays parked, reading nothing, until its context
	// ends; fixing the config means building a new Port.
	StateFailed State = "failed"
)

// Status is a snapshot of a Port for GET /v1/devices and device_status events.
type Status struct {
	Name string // Config.Name
	Path string // Config.Path, as configured
	// ResolvedPath is the node last opened: Path with symlinks resolved.
	ResolvedPath string
	State        State
	// Opens counts successful opens; Reopens those after the first. Each open
	// starts a new byte stream (see the package doc: reset the framer).
	Opens, Reopens uint64
	// OpenAttempts counts every open attempt, successful or not; with the clock it
	// shows that a missing device is retried with backoff, not in a hot loop.
	OpenAttempts uint64
	BytesRead    uint64
	// LastError is why the device was last lost or failed to open; it is kept
	// after a successful reopen so an operator can see what happened.
	LastError   string
	LastErrorAt time.Time
	OpenedAt    time.Time // when the current (or last) stream was opened
	LastByteAt  time.Time
}

const (
	// readBufSize matches the tty layer's 4 KiB read buffer: one read never
	// returns more.
	readBufSize = 4096
	// hangupReads is how many empty reads in a row, each returning well before
	// ReadTimeout, mean the tty was hung up. One is already a strong sign (an idle
	// read sleeps the whole VTIME); three rule out a stray wakeup.
	hangupReads = 3
	// closeGrace is added to ReadTimeout for the time Close waits for Run.
	closeGrace = 750 * time.Millisecond
)

// Port owns one configured serial device. Build it with New, run it with Run, stop
// it with Close (or by cancelling Run's context). Status is safe to call at any time
// from any goroutine.
type Port struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // guards the fields below; never held during I/O or callbacks
	status  Status
	running bool
	closed  bool
	stop    context.CancelFunc // cancels the active Run
	done    chan struct{}      // closed when the active Run has returned

	// wmu serialises writes and guards cur, the open handle (nil while the
	// device is not open). Never held with mu.
	wmu sync.Mutex
	cur io.Writer
}

var _ io.Closer = (*Port)(nil)

// New checks cfg and returns a Port for it. It does not touch the device: a device
// that is absent now is fine, Run waits for it. Errors wrap ErrInvalidConfig.
func New(cfg Config) (*Port, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	// Say exactly what tarm will do: VTIME counts whole deciseconds.
	cfg.ReadTimeout = cfg.ReadTimeout.Truncate(vtimeUnit)
	return &Port{
		cfg:    cfg,
		log:    cfg.Logger.With(slog.String("device", cfg.Name), slog.String("path", cfg.Path)),
		status: Status{Name: cfg.Name, Path: cfg.Path, State: StateClosed},
	}, nil
}

// Write sends p to the device (an RFID reader's poll command, say). It
// returns ErrNotOpen while the device is not open; a write to a device that
// just went away fails like any write, and Run notices the loss by itself.
func (p *Port) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.cur == nil {
		return 0, ErrNotOpen
	}
	return p.cur.Write(b)
}

func (p *Port) setWriter(w io.Writer) {
	p.wmu.Lock()
	p.cur = w
	p.wmu.Unlock()
}

// Status returns a snapshot of the port's state and counters.
func (p *Port) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Run opens the device and reads it until ctx ends or Close is called, then returns
// nil. A missing, unplugged, hung-up or replaced device is closed and reopened with
// backoff; nothing the device does makes Run return. It returns ErrRunning if this
// Port is already running and ErrClosed after Close; otherwise a Port may be run
// again after Run returned.
//
// onData receives every chunk read, in order; the chunk is only valid during the
// call. onState receives a Status on every change of State, including StateClosed
// when Run returns. Both are called on Run's goroutine, never concurrently, so
// onState(StateOpen) happens before the first onData of a new stream: reset the
// framer there. Either may be nil.
func (p *Port) Run(ctx context.Context, onData func(chunk []byte), onState func(Status)) error {
	if onData == nil {
		onData = func([]byte) {}
	}
	if onState == nil {
		onState = func(Status) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return ErrClosed
	case p.running:
		p.mu.Unlock()
		return ErrRunning
	}
	done := make(chan struct{})
	p.running, p.stop, p.done = true, cancel, done
	p.mu.Unlock()

	r := &runner{p: p, cfg: p.cfg, log: p.log, onData: onData, onState: onState,
		buf: make([]byte, readBufSize), bo: retry.Backoff{Min: p.cfg.BackoffMin, Max: p.cfg.BackoffMax}}
	defer func() {
		r.transition(StateClosed, nil)
		p.mu.Lock()
		p.running, p.stop = false, nil
		p.mu.Unlock()
		close(done)
	}()
	r.run(ctx)
	return nil
}

// Close stops Run and waits for it to return, at most ReadTimeout plus a grace
// period: a read already in the kernel cannot be interrupted and ends when its
// VTIME expires (see the package doc). If it does not, Close returns an error
// wrapping ErrCloseTimeout; Run still returns as soon as that read does. Close is
// idempotent; Run cannot be called afterwards. Calling Close from onData or onState
// cannot wait for Run (it is Run's own goroutine): it stops Run and returns
// ErrCloseTimeout after the wait.
func (p *Port) Close() error {
	p.mu.Lock()
	p.closed = true
	stop, done := p.stop, p.done
	p.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	wait := time.NewTimer(p.cfg.ReadTimeout + closeGrace)
	defer wait.Stop()
	select {
	case <-done:
		return nil
	case <-wait.C:
		p.log.Error("serial port close timed out: a read did not return", slog.Duration("waited", p.cfg.ReadTimeout+closeGrace))
		return fmt.Errorf("%w: device %q", ErrCloseTimeout, p.cfg.Name)
	}
}

// runner is the state of one Run; only Run's goroutine touches it.
type runner struct {
	p       *Port
	cfg     Config
	log     *slog.Logger
	onData  func([]byte)
	onState func(Status)
	buf     []byte
	bo      retry.Backoff
	// lastOpenErr is the message of the previous failed attempt, so a streak of
	// identical failures is logged once at Warn, not every 30s forever.
	lastOpenErr string
}

// session is one open of the device: one byte stream.
type session struct {
	port     *serial.Port
	path     string // resolved node that was opened
	id       nodeID
	hasID    bool // whether id can be compared on this platform
	openedAt time.Time
	bytes    uint64
}

// run is the open → read → lost → wait loop. It returns when ctx ends.
func (r *runner) run(ctx context.Context) {
	for ctx.Err() == nil {
		s, err := r.open()
		switch {
		case errors.Is(err, ErrUnusable):
			r.transition(StateFailed, err)
			r.log.Error("serial device unusable; not retrying", slog.Any("error", err))
			<-ctx.Done()
			return
		case err != nil:
			r.transition(StateReopening, err)
			d := r.bo.Next()
			if msg := err.Error(); msg != r.lastOpenErr {
				r.lastOpenErr = msg
				r.log.Warn("serial device not available; retrying", slog.Any("error", err), slog.Duration("retry_in", d))
			} else {
				r.log.Debug("serial device still not available", slog.Any("error", err), slog.Duration("retry_in", d))
			}
			if retry.Sleep(ctx, d) != nil {
				return
			}
			continue
		}

		r.lastOpenErr = ""
		r.p.setWriter(s.port)
		st := r.opened(s)
		if st.Reopens > 0 {
			r.log.Info("serial device reopened", slog.String("node", s.path), slog.Uint64("reopens", st.Reopens))
		} else {
			r.log.Info("serial device open", slog.String("node", s.path))
		}
		lost := r.read(ctx, s)
		r.p.setWriter(nil)
		// Close before waiting: holding a dead handle keeps the kernel from giving
		// the re-plugged device its old name back.
		_ = s.port.Close()
		if lost == nil {
			return
		}
		// A stream that worked (delivered bytes, or stayed up a whole StallAfter)
		// restarts the backoff; a device that fails right after every open keeps
		// backing off instead of flapping.
		if s.bytes > 0 || time.Since(s.openedAt) >= r.cfg.StallAfter {
			r.bo.Reset()
		}
		r.transition(StateReopening, lost)
		d := r.bo.Next()
		r.log.Warn("serial device lost; reopening", slog.Any("error", lost), slog.Uint64("bytes", s.bytes), slog.Duration("retry_in", d))
		if retry.Sleep(ctx, d) != nil {
			return
		}
	}
}

// open resolves the configured path and opens the node through tarm/serial, noting
// the node's identity for the stall check. Errors wrap ErrDeviceGone (nothing there),
// ErrDeviceReplaced (the node changed under us) or ErrUnusable (retrying cannot help).
func (r *runner) open() (*session, error) {
	r.p.update(func(st *Status) { st.OpenAttempts++ })
	resolved, err := resolvePath(r.cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist): // unplugged: the node or its by-id link is gone
		return nil, fmt.Errorf("%w: %w", ErrDeviceGone, err)
	case err != nil: // EACCES on /dev/serial and the like: retry, but say what it was
		return nil, err
	}
	// tarm keeps its descriptor to itself, so the node's identity cannot come from
	// fstat. Stat'ing before and after the open, and insisting they agree, pins
	// down the node that was opened just as well.
	before, hasID, err := statNode(resolved)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %w", ErrDeviceGone, err)
	case err != nil:
		hasID = false // cannot tell (permissions on a parent?); let the open decide
	}
	sp, err := serial.OpenPort(&serial.Config{
		Name:        resolved,
		Baud:        r.cfg.Baud,
		ReadTimeout: r.cfg.ReadTimeout,
		Size:        byte(r.cfg.DataBits),
		Parity:      serial.Parity(r.cfg.Parity),
		StopBits:    serial.StopBits(r.cfg.StopBits),
	})
	if err != nil {
		if _, ok := errors.AsType[*fs.PathError](err); !ok {
			err = fmt.Errorf("configure %s: %w", resolved, err) // tarm's termios errors carry no path
		}
		switch {
		case isUnusable(err), errors.Is(err, serial.ErrBadSize), errors.Is(err, serial.ErrBadParity),
			errors.Is(err, serial.ErrBadStopBits):
			return nil, fmt.Errorf("%w: %w", ErrUnusable, err)
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w: %w", ErrDeviceGone, err)
		}
		return nil, err
	}
	s := &session{port: sp, path: resolved, openedAt: time.Now()}
	if hasID {
		after, _, err := statNode(resolved)
		if err != nil || after != before {
			_ = sp.Close()
			return nil, fmt.Errorf("%w: %s changed while it was being opened", ErrDeviceReplaced, resolved)
		}
		s.id, s.hasID = after, true
	}
	return s, nil
}

// read delivers the session's bytes until ctx ends (it returns nil) or the device is
// lost (it returns why).
func (r *runner) read(ctx context.Context, s *session) error {
	var (
		lastByte  time.Time
		lastCheck = s.openedAt
		// An idle read sleeps the whole ReadTimeout; one returning empty in under
		// half of it was not idle, it was hung up.
		early     = r.cfg.ReadTimeout / 2
		earlyRuns int
	)
	for {
		if ctx.Err() != nil {
			return nil
		}
		start := time.Now()
		n, err := s.port.Read(r.buf)
		now := time.Now()
		if n > 0 {
			s.bytes += uint64(n)
			lastByte, earlyRuns = now, 0
			r.p.update(func(st *Status) {
				st.BytesRead += uint64(n)
				st.LastByteAt = now
			})
			r.onData(r.buf[:n])
		}
		if ctx.Err() != nil {
			return nil
		}
		// On unix tarm's Read reports an idle timeout as (0, io.EOF); on Windows
		// as (0, nil). Neither is an error by itself.
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: read: %w", ErrDeviceGone, err)
		}
		if n == 0 {
			if now.Sub(start) < early {
				if earlyRuns++; earlyRuns >= hangupReads {
					return fmt.Errorf("%w: reads of %s return nothing at once (tty hung up, or its settings changed under us)", ErrDeviceGone, s.path)
				}
			} else {
				earlyRuns = 0
			}
		}
		// A silent device is normal; a silent device whose node is gone or was
		// replaced is a dead handle that would be silent forever.
		quietSince := s.openedAt
		if lastByte.After(quietSince) {
			quietSince = lastByte
		}
		if s.hasID && now.Sub(quietSince) >= r.cfg.StallAfter && now.Sub(lastCheck) >= r.cfg.StallAfter {
			lastCheck = now
			if err := r.checkNode(s); err != nil {
				return err
			}
		}
	}
}

// checkNode compares the node the configured path names now with the open one.
func (r *runner) checkNode(s *session) error {
	now, _, err := statNode(r.cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrDeviceGone, err)
	case err != nil:
		// Cannot tell; never tear down a port that may be working.
		r.log.Debug("serial device node check failed", slog.Any("error", err))
		return nil
	case now != s.id:
		return fmt.Errorf("%w: %s no longer names the open node %s", ErrDeviceReplaced, r.cfg.Path, s.path)
	}
	return nil
}

// opened records a successful open and reports StateOpen.
func (r *runner) opened(s *session) Status {
	st := r.p.update(func(st *Status) {
		st.Opens++
		if st.Opens > 1 {
			st.Reopens++
		}
		st.ResolvedPath = s.path
		st.OpenedAt = s.openedAt
		st.State = StateOpen
	})
	r.onState(st)
	return st
}

// transition records a new state (and err, if any) and calls onState if the state
// changed.
func (r *runner) transition(state State, err error) {
	changed := false
	st := r.p.update(func(st *Status) {
		changed = st.State != state
		st.State = state
		if err != nil {
			st.LastError = err.Error()
			st.LastErrorAt = time.Now()
		}
	})
	if changed {
		r.onState(st)
	}
}

// update applies fn to the status under the lock and returns a copy.
func (p *Port) update(fn func(*Status)) Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(&p.status)
	return p.status
}
