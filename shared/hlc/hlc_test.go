package hlc

import (
	"errors"
	"testing"
	"testing/quick"
	"time"
)

type fakeWall struct{ ms int64 }

func (f *fakeWall) now() time.Time { return time.UnixMilli(f.ms) }

// Ensure that the clock never goes backwards when the wall clock does.
func TestClock_WallGoesBackwards(t *testing.T) {
	w := &fakeWall{ms: 10_000}
	c := New(w.now, Timestamp{})
	a := c.Now()
	w.ms = 5_000 // NTP step back by five seconds
	b := c.Now()
	if !a.Before(b) {
		t.Fatalf("clock went backwards: %s then %s", a, b)
	}
	if got := c.Skew(); got != 5*time.Second {
		t.Fatalf("skew = %v, want 5s", got)
	}
	w.ms = 20_000
	d := c.Now()
	if d.Wall != 20_000 || d.Logical != 0 || c.Skew() != 0 {
		t.Fatalf("clock did not resume wall time: %s skew %v", d, c.Skew())
	}
}

// Ensure that a floor persisted before a restart is respected.
func TestClock_Floor(t *testing.T) {
	w := &fakeWall{ms: 1_000}
	floor := Timestamp{Wall: 2_000, Logical: 7}
	c := New(w.now, floor)
	if got := c.Now(); !floor.Before(got) {
		t.Fatalf("Now() = %s, not after floor %s", got, floor)
	}
}

// Ensure that the logical counter rolls into the next millisecond instead of
// overflowing the packed form.
func TestClock_LogicalExhaustion(t *testing.T) {
	w := &fakeWall{ms: 1_000}
	c := New(w.now, Timestamp{})
	prev := c.Now()
	for i := 0; i < 70_000; i++ {
		next := c.Now()
		if !prev.Before(next) || prev.Pack() >= next.Pack() {
			t.Fatalf("not increasing at %d: %s then %s", i, prev, next)
		}
		prev = next
	}
}

func TestClock_Observe(t *testing.T) {
	w := &fakeWall{ms: 1_000}
	c := New(w.now, Timestamp{})
	if err := c.Observe(Timestamp{Wall: 5_000, Logical: 3}); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); got.Compare(Timestamp{Wall: 5_000, Logical: 4}) != 0 {
		t.Fatalf("Now() after Observe = %s", got)
	}
	far := Timestamp{Wall: w.ms + (MaxForwardJump + time.Minute).Milliseconds()}
	if err := c.Observe(far); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("Observe(far future) err = %v", err)
	}
}

// Ensure that Pack preserves order and round-trips.
func TestPack_Order(t *testing.T) {
	f := func(w1, w2 uint32, l1, l2 uint16) bool {
		a := Timestamp{Wall: int64(w1), Logical: uint32(l1)}
		b := Timestamp{Wall: int64(w2), Logical: uint32(l2)}
		if Unpack(a.Pack()) != a {
			return false
		}
		cmp := a.Compare(b)
		pa, pb := a.Pack(), b.Pack()
		return (cmp < 0) == (pa < pb) && (cmp == 0) == (pa == pb)
	}
	if err := quick.Check(f, nil); err != nil {
		t.Fatal(err)
	}
}
