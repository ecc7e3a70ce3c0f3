package testkit_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// echo serves a line echo on a free port.
func echo(t *testing.T) string {
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
