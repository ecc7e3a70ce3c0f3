package testkit_test

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// echo serves a line echo on a free port.
func echo(t *testing.T) string { return echoCounting(t, nil) }

// echoCounting is echo, adding one to closed (when not nil) each time a
// connection ends on its side.
func echoCounting(t *testing.T, closed *atomic.Int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if closed != nil {
					defer closed.Add(1)
				}
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(l))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

// Ensure that the proxy forwards, cuts, stalls and heals a real link.
func TestProxy(t *testing.T) {
	p := testkit.StartProxy(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, 2*time.Second); err != nil {
		t.Fatalf("forward: %v", err)
	}
	p.Stall()
	if err := roundTrip(c, 300*time.Millisecond); err == nil {
		t.Fatal("a stalled link answered")
	}
	p.Heal()
	c2, _ := net.Dial("tcp", p.Addr())
	if err := roundTrip(c2, 2*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	p.Cut()
	if err := roundTrip(c2, time.Second); err == nil {
		t.Fatal("a cut connection still works")
	}
	if c3, err := net.Dial("tcp", p.Addr()); err == nil {
		if roundTrip(c3, 500*time.Millisecond) == nil {
			t.Fatal("a cut link accepted a new connection")
		}
	}
	p.Heal()
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil || roundTrip(c4, 2*time.Second) != nil {
		t.Fatalf("after the cut healed: %v", err)
	}

}

// Ensure that a dropped connection goes dead without its close reaching
// the server, while a new one gets through, and that Heal ends it.
func TestProxyDrop(t *testing.T) {
	var closed atomic.Int64
	p := testkit.StartProxy(t, echoCounting(t, &closed))
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil || roundTrip(c4, 2*time.Second) != nil {
		t.Fatalf("forward: %v", err)
	}
	p.Drop()
	if err := roundTrip(c4, 300*time.Millisecond); err == nil {
		t.Fatal("a dropped connection answered")
	}
	c5, err := net.Dial("tcp", p.Addr())
	if err != nil || roundTrip(c5, 2*time.Second) != nil {
		t.Fatalf("a new connection after a drop: %v", err)
	}
	_ = c4.Close()
	if err := roundTrip(c5, 2*time.Second); err != nil {
		t.Fatalf("the new connection after the dropped one closed: %v", err)
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("the server saw %d connections close across a dead line", n)
	}
	p.Heal()
	deadline := time.Now().Add(5 * time.Second)
	for closed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := closed.Load(); n != 1 {
		t.Fatalf("after the heal the server saw %d connections close, want the dropped one", n)
	}
	if err := roundTrip(c5, 2*time.Second); err != nil {
		t.Fatalf("the new connection after the heal: %v", err)
	}
}
