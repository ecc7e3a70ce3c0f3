package testkit

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy between a client and a server, for partitions: it
// can cut a link (close every connection and refuse new ones), stall it
// (keep connections open but forward nothing, like a dead NAT entry or a
// pulled cable TCP has not noticed yet), drop the connections open now
// (they go dead, closes included, while new ones get through) and slow it
// (add latency to every chunk). It is a real network path, not a mock:
// both sides see real resets, timeouts and slow reads.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	cut     bool
	stalled bool
	delay   time.Duration
	wake    chan struct{} // closed and replaced when a stall ends
	closed  bool
	// dead holds both sides of the connections Drop killed; deadWake is
	// closed and replaced when Heal or Cut ends them.
	dead     map[net.Conn]bool
	deadWake chan struct{}
}

// StartProxy listens on a free loopback port and forwards to target
// (host:port) until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}, wake: make(chan struct{}),
		dead: map[net.Conn]bool{}, deadWake: make(chan struct{})}
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port; clients connect here instead of target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection (both sides see a reset) and refuses
// new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.endDrop()
	p.mu.Unlock()
	for c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a polite close
		}
		_ = c.Close()
	}
}

// Stall stops forwarding bytes in both directions; connections stay open
// and new ones are accepted (and stall too) until Heal.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Drop kills the connections open now as a line that fails silently does:
// nothing more crosses them in either direction, and neither side learns
// when the other closes (no FIN or reset crosses a dead line), so each
// side keeps its end until its own keepalives give up. Connections made
// afterwards are served normally. Heal or Cut ends the dead ones (both
// sides then see them close).
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.dead[c] = true
	}
}

// endDrop lets the dead connections close. Lock held.
func (p *Proxy) endDrop() {
	if len(p.dead) > 0 {
		p.dead = map[net.Conn]bool{}
		close(p.deadWake)
		p.deadWake = make(chan struct{})
	}
}

// holdIfDead blocks while c is one of the connections Drop killed, and
// reports whether it was.
func (p *Proxy) holdIfDead(c net.Conn) bool {
	p.mu.Lock()
	dead, wake := p.dead[c], p.deadWake
	p.mu.Unlock()
	if dead {
		<-wake
	}
	return dead
}

// Slow adds d of latency to every chunk forwarded (0 removes it).
func (p *Proxy) Slow(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Heal ends a cut, a stall and any slowness.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut, p.delay = false, 0
	p.endDrop()
	if p.stalled {
		p.stalled = false
		close(p.wake)
		p.wake = make(chan struct{})
	}
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.Heal()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.cut || p.closed
		p.mu.Unlock()
		if refuse {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			continue
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(s, c); done <- struct{}{} }()
	go func() { p.pipe(c, s); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = s.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// pipe copies src to dst chunk by chunk, honouring stalls and delays.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.holdIfDead(src) {
			return
		}
		if n > 0 {
			for {
				p.mu.Lock()
				stalled, wake, delay, cut := p.stalled, p.wake, p.delay, p.cut
				p.mu.Unlock()
				if cut {
					return
				}
				if !stalled {
					if delay > 0 {
						time.Sleep(delay)
					}
					break
				}
				<-wake
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}
