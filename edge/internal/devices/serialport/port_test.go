//go:build linux

package serialport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyDevice is a serial device made of a pseudo-terminal pair: the test writes what
// the device sends into the master, and the Port opens the slave through
// tarm/serial, exactly as it opens /dev/ttyACM0. The Port is configured with link, a
// stable symlink like /dev/serial/by-id/..., so a "re-plug" can point it at a fresh
// pty the way udev points a by-id link at the new ttyACMn.
type ptyDevice struct {
	tb     testing.TB
	link   string
	master *os.File // nil while unplugged
	slave  *os.File // held open so the pty lives while the Port is between opens
	spare  []*os.File
}

// newPtyDevice returns a device at t.TempDir()/dev/scanner-1, plugged in or not.
func newPtyDevice(tb testing.TB, plugged bool) *ptyDevice {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "dev")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	d := &ptyDevice{tb: tb, link: filepath.Join(dir, "scanner-1")}
	if plugged {
		d.plug()
	}
	tb.Cleanup(func() {
		d.unplug()
		for _, f := range d.spare {
			_ = f.Close()
		}
	})
	return d
}

// plug creates a new pty, puts its slave in raw mode (so bytes written before the
// Port configures it are not cooked or echoed) and points the link at it.
func (d *ptyDevice) plug() {
	d.tb.Helper()
	m, s, err := pty.Open()
	if err != nil {
		d.tb.Fatal(err)
	}
	if err := makeRaw(s); err != nil {
		d.tb.Fatal(err)
	}
	// Rename over the link so it never dangles, as udev does.
	tmp := d.link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(s.Name(), tmp); err != nil {
		d.tb.Fatal(err)
	}
	if err := os.Rename(tmp, d.link); err != nil {
		d.tb.Fatal(err)
	}
	d.master, d.slave = m, s
}

// unplug closes the pty (the kernel hangs up its slave and removes the node) and
// removes the link, like pulling the USB cable.
func (d *ptyDevice) unplug() {
	if d.master != nil {
		_ = d.master.Close()
		_ = d.slave.Close()
		d.master, d.slave = nil, nil
	}
	_ = os.Remove(d.link)
}

// replace plugs a new pty at the link while the old one stays open and silent: the
// node the Port holds is alive but no longer the configured device.
func (d *ptyDevice) replace() {
	d.spare = append(d.spare, d.master, d.slave)
	d.plug()
}

// write sends b from the device.
func (d *ptyDevice) write(b []byte) {
	d.tb.Helper()
	if _, err := d.master.Write(b); err != nil {
		d.tb.Fatal(err)
	}
}

// controlFd runs fn on f's descriptor without switching f to blocking mode.
func controlFd(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

func makeRaw(f *os.File) error {
	var terr error
	err := controlFd(f, func(fd int) {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		// cfmakeraw(3)
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag &^= unix.CSIZE | unix.PARENB
		tio.Cflag |= unix.CS8
		terr = unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	})
	return errors.Join(err, terr)
}

// sink records what a Port delivers: the bytes, the states, and their interleaving.
type sink struct {
	mu     sync.Mutex
	data   []byte
	states []Status
	events []string // "open", "reopening", ..., and "data" once per run of chunks
}

func (s *sink) onData(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, b...)
	if len(s.events) == 0 || s.events[len(s.events)-1] != "data" {
		s.events = append(s.events, "data")
	}
}

func (s *sink) onState(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, st)
	s.events = append(s.events, string(st.State))
}

func (s *sink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.data)
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

func (s *sink) stateLog() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states)
}

func (s *sink) eventLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// running is a Port under Run in the background.
type running struct {
	*Port
	sink *sink
	done chan struct{} // closed when Run returned
	err  error         // Run's result, valid after done
}

// startPort builds a Port from cfg (baud and logger defaulted) and runs it until the
// test ends.
func startPort(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.Baud == 0 {
		cfg.Baud = 115200
	}
	if cfg.Name == "" {
		cfg.Name = "scanner-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Port: p, sink: &sink{}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = r.Run(context.Background(), r.sink.onData, r.sink.onState)
	}()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-r.done:
		case <-time.After(3 * time.Second):
			t.Errorf("Run did not return after Close")
		}
	})
	return r
}

// returned reports whether Run has returned.
func (r *running) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitStatus polls Status until cond holds and returns it; it fails the test after
// timeout.
func (r *running) waitStatus(t *testing.T, timeout time.Duration, what string, cond func(Status) bool) Status {
	t.Helper()
	var st Status
	eventually(t, timeout, what, func() bool { st = r.Status(); return cond(st) })
	return st
}

func (r *running) waitOpen(t *testing.T) Status {
	t.Helper()
	return r.waitStatus(t, 5*time.Second, "port open", func(st Status) bool { return st.State == StateOpen })
}

// waitBytes waits until n bytes have been delivered and returns them all.
func (r *running) waitBytes(t *testing.T, timeout time.Duration, n int) []byte {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d bytes delivered", n), func() bool { return r.sink.len() >= n })
	return r.sink.bytes()
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkSame fails with the first difference between got and want.
func checkSame(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("delivered %d bytes, want %d; first difference at offset %d", len(got), len(want), i)
}

// Ensure that 1 MiB written as fast as the pty takes it arrives in order, nothing
// lost or duplicated.
func TestPort_BurstArrivesInOrder(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{Path: dev.link})
	r.waitOpen(t)

	want := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(want)
	start := time.Now()
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for off := 0; off < len(want) && err == nil; off += 4096 {
			_, err = dev.master.Write(want[off : off+4096])
		}
		writeErr <- err
	}()
	got := r.waitBytes(t, 30*time.Second, len(want))
	elapsed := time.Since(start)
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	checkSame(t, got, want)
	if st := r.Status(); st.BytesRead != uint64(len(want)) || st.Opens != 1 {
		t.Errorf("Status = %+v, want BytesRead %d and one open", st, len(want))
	}
	t.Logf("1 MiB in %v (%.1f MB/s)", elapsed, float64(len(want))/1e6/elapsed.Seconds())
}

// Ensure that frames split into single bytes with pauses, merged into one write, or
// cut at odd places all arrive byte for byte.
func TestPort_SplitAndMergedWrites(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{Path: dev.link})
	r.waitOpen(t)

	var want []byte
	frame := []byte("]E05901234123457\r\n")
	for _, b := range frame { // one byte at a time, like a slow UART
		dev.write([]byte{b})
		time.Sleep(time.Millisecond)
	}
	want = append(want, frame...)
	merged := bytes.Repeat([]byte("]C1010950110153000311\r\n"), 20)
	dev.write(merged)
	want = append(want, merged...)
	split := []byte("]Q3https://id.gs1.org/01/09506000134352\r\n")
	for _, part := range [][]byte{split[:2], split[2:17], split[17 : len(split)-1], split[len(split)-1:]} {
		dev.write(part)
		time.Sleep(5 * time.Millisecond)
	}
	want = append(want, split...)

	checkSame(t, r.waitBytes(t, 5*time.Second, len(want)), want)
}

// Ensure that every byte value, control characters included (NUL, ^C, ^D, XON/XOFF,
// CR, DEL, 0xFF), passes through untouched: no termios cooking, no flow control.
func TestPort_GarbagePassesThrough(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{Path: dev.link})
	r.waitOpen(t)

	var want []byte
	for i := range 256 {
		want = append(want, byte(i))
	}
	for i := 255; i >= 0; i-- {
		want = append(want, byte(i))
	}
	want = append(want, "\x02RFID,E280689400005012,1,-61\x03\xff\xfe\x00\r\r\n\x13\x11\x03\x04"...)
	for off := 0; off < len(want); off += 37 {
		dev.write(want[off:min(off+37, len(want))])
	}
	checkSame(t, r.waitBytes(t, 5*time.Second, len(want)), want)
}

// Ensure that an unplugged device is noticed at once (the tty hangs up), retried with
// backoff rather than in a hot loop, and reopened when it comes back, with the new
// stream announced by StateOpen before its first byte.
func TestPort_UnplugAndReplug(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{
		Path:        dev.link,
		ReadTimeout: 100 * time.Millisecond,
		// Far longer than the test: only the hang-up itself can reveal the unplug.
		StallAfter: time.Minute,
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond,
	})
	first := r.waitOpen(t)
	dev.write([]byte("before\r\n"))
	r.waitBytes(t, 5*time.Second, len("before\r\n"))

	unplugged := time.Now()
	dev.unplug()
	st := r.waitStatus(t, time.Second, "reopening after unplug", func(st Status) bool { return st.State == StateReopening })
	t.Logf("unplug noticed after %v: %s", time.Since(unplugged), st.LastError)
	if !strings.Contains(st.LastError, ErrDeviceGone.Error()) {
		t.Errorf("LastError = %q, want it to say %q", st.LastError, ErrDeviceGone)
	}

	// Counting attempts over a fixed window is the measurement, so this is a sleep.
	a0 := r.Status().OpenAttempts
	time.Sleep(time.Second)
	a1 := r.Status().OpenAttempts
	t.Logf("%d open attempts in 1s while unplugged", a1-a0)
	if n := a1 - a0; n < 1 || n > 8 {
		t.Errorf("%d open attempts in 1s; want a backoff (50ms doubling to 400ms, each wait in the upper half of its step: 4-7), not a hot loop or a stop", n)
	}
	if r.returned() {
		t.Fatal("Run returned while the device was unplugged")
	}

	replugged := time.Now()
	dev.plug()
	st = r.waitStatus(t, 10*time.Second, "reopened after re-plug", func(st Status) bool { return st.State == StateOpen })
	t.Logf("re-plug picked up after %v", time.Since(replugged))
	dev.write([]byte("after\r\n"))
	checkSame(t, r.waitBytes(t, 5*time.Second, len("before\r\nafter\r\n")), []byte("before\r\nafter\r\n"))

	st = r.Status()
	if st.Opens != 2 || st.Reopens != 1 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Errorf("Status = %+v, want 2 opens, 1 reopen and the last error", st)
	}
	if st.ResolvedPath != dev.slave.Name() {
		t.Errorf("ResolvedPath = %q (first open %q), want the new pty %q", st.ResolvedPath, first.ResolvedPath, dev.slave.Name())
	}
	want := []string{"open", "data", "reopening", "open", "data"}
	if got := r.sink.eventLog(); !slices.Equal(got, want) {
		t.Errorf("callbacks = %v, want %v (StateOpen before each stream's first byte)", got, want)
	}
	if s := r.sink.stateLog(); s[len(s)-1].Reopens != 1 {
		t.Errorf("onState for the reopen carried Reopens = %d, want 1", s[len(s)-1].Reopens)
	}
}

// Ensure that a tty hung up under an open port (what a pulled USB adapter does:
// every read returns nothing at once, forever) is noticed from the reads alone and
// reopened. TIOCVHANGUP needs CAP_SYS_ADMIN; without it the next test covers the
// same detection.
func TestPort_HungUpTtyIsReopened(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{Path: dev.link, StallAfter: time.Minute, BackoffMin: 20 * time.Millisecond})
	r.waitOpen(t)
	var err error
	if cerr := controlFd(dev.slave, func(fd int) { _, err = unix.IoctlRetInt(fd, unix.TIOCVHANGUP) }); cerr != nil {
		t.Fatal(cerr)
	}
	if errors.Is(err, unix.EPERM) {
		t.Skip("TIOCVHANGUP needs CAP_SYS_ADMIN; TestPort_EmptyReadsForeverAreReopened covers the same detection")
	} else if err != nil {
		t.Fatal(err)
	}
	hungUp := time.Now()
	st := r.waitStatus(t, 10*time.Second, "reopened after hang-up", func(st Status) bool { return st.Reopens == 1 && st.State == StateOpen })
	t.Logf("hang-up noticed and reopened after %v: %s", time.Since(hungUp), st.LastError)
	if !strings.Contains(st.LastError, "hung up") {
		t.Errorf("LastError = %q, want a hang-up", st.LastError)
	}
	dev.write([]byte("back\r\n"))
	checkSame(t, r.waitBytes(t, 10*time.Second, 6), []byte("back\r\n"))
}

// Ensure that a read that returns nothing at once, forever, on a device that is
// still there (another program set VMIN=0 VTIME=0 on the tty, as a modem prober
// does) is treated like a hang-up: reopened, which restores our settings.
func TestPort_EmptyReadsForeverAreReopened(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{Path: dev.link, StallAfter: time.Minute, BackoffMin: 20 * time.Millisecond})
	r.waitOpen(t)
	var err error
	if cerr := controlFd(dev.slave, func(fd int) {
		var tio *unix.Termios
		if tio, err = unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 0, 0
			err = unix.IoctlSetTermios(fd, unix.TCSETS, tio)
		}
	}); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	changed := time.Now()
	st := r.waitStatus(t, 10*time.Second, "reopened after empty reads", func(st Status) bool { return st.Reopens == 1 && st.State == StateOpen })
	t.Logf("empty reads noticed and reopened after %v: %s", time.Since(changed), st.LastError)
	// Reopened, tarm set VMIN/VTIME again: the port idles instead of spinning.
	a0 := r.Status().OpenAttempts
	time.Sleep(300 * time.Millisecond)
	if st := r.Status(); st.OpenAttempts != a0 || st.State != StateOpen {
		t.Errorf("after reopening: %+v; want open and no more attempts", st)
	}
	dev.write([]byte("ok\r\n"))
	checkSame(t, r.waitBytes(t, 10*time.Second, 4), []byte("ok\r\n"))
}

// Ensure that a present but silent device is left open: silence is normal.
func TestPort_SilentDeviceStaysOpen(t *testing.T) {
	dev := newPtyDevice(t, true)
	const stall = 200 * time.Millisecond
	r := startPort(t, Config{Path: dev.link, ReadTimeout: 100 * time.Millisecond, StallAfter: stall, BackoffMin: 10 * time.Millisecond})
	r.waitOpen(t)

	time.Sleep(3*stall + 100*time.Millisecond) // the silence is what is tested
	st := r.Status()
	if st.State != StateOpen || st.Opens != 1 || st.Reopens != 0 || st.OpenAttempts != 1 || st.LastError != "" {
		t.Fatalf("after %v of silence Status = %+v, want still open after a single attempt", 3*stall, st)
	}
	dev.write([]byte("late\r\n"))
	checkSame(t, r.waitBytes(t, 10*time.Second, 6), []byte("late\r\n"))
	if got := r.sink.eventLog(); !slices.Equal(got, []string{"open", "data"}) {
		t.Errorf("callbacks = %v, want [open data]", got)
	}
}

// Ensure that a silent port whose by-id link now names another node (a re-plug
// that got a new ttyACMn) is reopened onto the new node within about two StallAfter.
func TestPort_NodeReplacedWhileSilent(t *testing.T) {
	dev := newPtyDevice(t, true)
	const stall = 300 * time.Millisecond
	r := startPort(t, Config{Path: dev.link, ReadTimeout: 100 * time.Millisecond, StallAfter: stall, BackoffMin: 20 * time.Millisecond})
	old := r.waitOpen(t)

	replaced := time.Now()
	dev.replace() // the old pty stays open: its handle is alive, just not the device any more
	st := r.waitStatus(t, 5*time.Second, "reopened onto the new node", func(st Status) bool { return st.Reopens == 1 && st.State == StateOpen })
	took := time.Since(replaced)
	t.Logf("replacement noticed and reopened after %v (StallAfter %v): %s", took, stall, st.LastError)
	if st.ResolvedPath == old.ResolvedPath || st.ResolvedPath != dev.slave.Name() {
		t.Errorf("ResolvedPath = %q (was %q), want the new pty %q", st.ResolvedPath, old.ResolvedPath, dev.slave.Name())
	}
	if !strings.Contains(st.LastError, ErrDeviceReplaced.Error()) {
		t.Errorf("LastError = %q, want it to say %q", st.LastError, ErrDeviceReplaced)
	}
	dev.write([]byte("new\r\n"))
	checkSame(t, r.waitBytes(t, 10*time.Second, 5), []byte("new\r\n"))
}

// Ensure that Close returns promptly while a read is blocked in the kernel, Run
// returns, and no goroutine is left behind.
func TestPort_CloseIsBoundedDuringBlockedRead(t *testing.T) {
	for _, rt := range []time.Duration{DefaultReadTimeout, MaxReadTimeout} {
		t.Run(rt.String(), func(t *testing.T) {
			before := runtime.NumGoroutine()
			dev := newPtyDevice(t, true)
			p, err := New(Config{Name: "scanner-1", Path: dev.link, Baud: 9600, ReadTimeout: rt})
			if err != nil {
				t.Fatal(err)
			}
			var opened atomic.Bool
			runErr := make(chan error, 1)
			go func() {
				runErr <- p.Run(context.Background(), nil, func(st Status) { opened.Store(opened.Load() || st.State == StateOpen) })
			}()
			eventually(t, 5*time.Second, "port open", opened.Load)
			time.Sleep(50 * time.Millisecond) // let Run block in a read of the silent device

			start := time.Now()
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			took := time.Since(start)
			t.Logf("Close with ReadTimeout %v took %v", rt, took)
			// Bounded, not timed: a Close that waits for a blocked read would
			// take forever; a slow machine only takes longer.
			if took >= 10*time.Second {
				t.Errorf("Close took %v: it waited for a read that never returns", took)
			}
			// Close waited for Run to finish; the goroutine that reports
			// Run's result may still be on its way to the channel.
			select {
			case err := <-runErr:
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(time.Second):
				t.Fatal("Run did not return after Close")
			}
			if st := p.Status(); st.State != StateClosed {
				t.Errorf("State = %q after Close, want closed", st.State)
			}
			eventually(t, 2*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
			if err := p.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
			if err := p.Run(context.Background(), nil, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Run after Close = %v, want ErrClosed", err)
			}
		})
	}
}

// Ensure that cancelling Run's context stops it, and that a Port runs once at a time
// but may run again afterwards.
func TestPort_RunContextAndReuse(t *testing.T) {
	dev := newPtyDevice(t, true)
	p, err := New(Config{Name: "scanner-1", Path: dev.link, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		var s sink
		runErr := make(chan error, 1)
		go func() { runErr <- p.Run(ctx, s.onData, s.onState) }()
		eventually(t, 5*time.Second, "open", func() bool { return p.Status().State == StateOpen })
		if err := p.Run(ctx, nil, nil); !errors.Is(err, ErrRunning) {
			t.Errorf("second concurrent Run = %v, want ErrRunning", err)
		}
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Fatalf("Run = %v after cancel, want nil", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if got := s.eventLog(); !slices.Equal(got, []string{"open", "closed"}) {
			t.Errorf("round %d callbacks = %v, want [open closed]", round, got)
		}
	}
	if st := p.Status(); st.Opens != 2 || st.Reopens != 1 {
		t.Errorf("Status = %+v, want 2 opens, 1 reopen", st)
	}
}

// Ensure that a device absent at start is retried with backoff, Run keeps going, and
// the device is opened once it appears.
func TestPort_MissingAtStartKeepsRetrying(t *testing.T) {
	dev := newPtyDevice(t, false)
	r := startPort(t, Config{Path: dev.link, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	st := r.waitStatus(t, 3*time.Second, "three attempts", func(st Status) bool { return st.OpenAttempts >= 3 })
	if st.State != StateReopening || !strings.Contains(st.LastError, "no such file") {
		t.Errorf("Status = %+v, want reopening with a no-such-file error", st)
	}
	if r.returned() {
		t.Fatal("Run returned while the device was missing")
	}
	dev.plug()
	st = r.waitOpen(t)
	if st.Opens != 1 || st.Reopens != 0 {
		t.Errorf("Status = %+v, want a first open (Reopens 0)", st)
	}
	dev.write([]byte("hello\r\n"))
	checkSame(t, r.waitBytes(t, 10*time.Second, 7), []byte("hello\r\n"))
	if got := r.sink.eventLog(); !slices.Equal(got, []string{"reopening", "open", "data"}) {
		t.Errorf("callbacks = %v, want [reopening open data]", got)
	}
}

// Ensure that a path that is not a terminal fails without retrying, and that Run
// stays parked (not taking the agent down) until closed.
func TestPort_NotATerminalFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-tty")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startPort(t, Config{Path: path, BackoffMin: 10 * time.Millisecond})
	st := r.waitStatus(t, 10*time.Second, "failed", func(st Status) bool { return st.State == StateFailed })
	if !strings.Contains(st.LastError, ErrUnusable.Error()) || !strings.Contains(st.LastError, "inappropriate ioctl") {
		t.Errorf("LastError = %q, want unusable: not a tty", st.LastError)
	}
	time.Sleep(100 * time.Millisecond) // would be ~5 more attempts if it retried
	if st := r.Status(); st.OpenAttempts != 1 || r.returned() {
		t.Errorf("OpenAttempts = %d, returned = %v; want one attempt and Run parked", st.OpenAttempts, r.returned())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Close stops Run; the goroutine that ran it may not have been
	// scheduled since.
	select {
	case <-r.done:
	case <-time.After(3 * time.Second):
	}
	if !r.returned() || r.err != nil {
		t.Errorf("after Close: returned %v, err %v", r.returned(), r.err)
	}
}

// Ensure that Linux rejects baud rates its termios cannot express, up front.
func TestNew_RejectsNonStandardBaudOnLinux(t *testing.T) {
	if _, err := New(Config{Path: "/dev/ttyACM0", Baud: 14400}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(baud 14400) = %v, want ErrInvalidConfig", err)
	}
}

// BenchmarkPort_Throughput measures bytes delivered per second through a pty, in
// 64 KiB writes (the MB/s column), and the average chunk handed to onData.
func BenchmarkPort_Throughput(b *testing.B) {
	dev := newPtyDevice(b, true)
	p, err := New(Config{Name: "bench", Path: dev.link, Baud: 4000000})
	if err != nil {
		b.Fatal(err)
	}
	var got, reads atomic.Int64
	opened := make(chan struct{}, 1)
	runErr := make(chan error, 1)
	go func() {
		runErr <- p.Run(context.Background(),
			func(c []byte) { got.Add(int64(len(c))); reads.Add(1) },
			func(st Status) {
				if st.State == StateOpen {
					opened <- struct{}{}
				}
			})
	}()
	<-opened
	chunk := make([]byte, 64<<10)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(chunk)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		dev.write(chunk)
	}
	total := int64(b.N) * int64(len(chunk))
	for got.Load() < total {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/float64(reads.Load()), "B/read")
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
}

// Ensure that Write reaches the device while it is open and fails clearly
// while it is not.
func TestPort_Write(t *testing.T) {
	dev := newPtyDevice(t, true)
	r := startPort(t, Config{Path: dev.link})
	r.waitOpen(t)
	cmd := []byte{0xA0, 0x04, 0x01, 0x89, 0x01, 0xD1}
	if _, err := r.Write(cmd); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(cmd))
	buf := make([]byte, 16)
	eventually(t, 5*time.Second, "command reaches the device", func() bool {
		_ = dev.master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _ := dev.master.Read(buf)
		got = append(got, buf[:n]...)
		return len(got) >= len(cmd)
	})
	checkSame(t, got, cmd)

	p, err := New(Config{Name: "idle", Path: dev.link, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(cmd); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("write to a port that never ran: %v", err)
	}
}
