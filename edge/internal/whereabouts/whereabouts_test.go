package whereabouts

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/gs1"
)

const (
	jeans  = "80614141123458"
	jeans2 = "0614141123452" // another GTIN (GTIN-13) of the same variant
	tee    = "09506000134352"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func open(t *testing.T, path string, c *clock) *Book {
	t.Helper()
	b, err := Open(Options{Path: path, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Ensure that Where answers from the sweeps: the latest area that still
// lists units, the units it read, units carried into a fitting room or
// swept elsewhere taken off their old area, and nothing for an item no
// sweep saw.
func TestBook_Where(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	t0 := c.Now()
	type step func(b *Book) error
	swept := func(area string, at time.Duration, gtin string, serials ...string) step {
		return func(b *Book) error {
			return b.Swept(ctx, area, []Sighting{{GTIN: gtin, Serials: serials, At: t0.Add(at)}})
		}
	}
	entered := func(gtin, serial string) step {
		return func(b *Book) error { return b.Entered(ctx, []Unit{{GTIN: gtin, Serial: serial}}) }
	}
	tests := []struct {
		name  string
		steps []step
		ask   []string
		want  *Place
	}{
		{"never seen", nil, []string{jeans}, nil},
		{"one sweep", []step{swept("rack-7", 0, jeans, "1", "2")}, []string{jeans},
			&Place{Area: "rack-7", Seen: t0, Units: []string{"1", "2"}}},
		{"other gtin of the variant", []step{swept("rack-7", 0, "0"+jeans2, "1")}, []string{jeans, jeans2},
			&Place{Area: "rack-7", Seen: t0, Units: []string{"1"}}},
		{"latest area wins", []step{swept("stockroom", 0, jeans, "1", "2"), swept("rack-7", time.Minute, jeans, "3")}, []string{jeans},
			&Place{Area: "rack-7", Seen: t0.Add(time.Minute), Units: []string{"3"}}},
		{"a unit moves", []step{swept("stockroom", 0, jeans, "1", "2"), swept("rack-7", time.Minute, jeans, "2")}, []string{jeans},
			&Place{Area: "rack-7", Seen: t0.Add(time.Minute), Units: []string{"2"}}},
		{"resweep replaces the units", []step{swept("rack-7", 0, jeans, "1", "2"), swept("rack-7", time.Minute, jeans, "2")}, []string{jeans},
			&Place{Area: "rack-7", Seen: t0.Add(time.Minute), Units: []string{"2"}}},
		{"into a fitting room: the older area with units", []step{
			swept("stockroom", 0, jeans, "1"), swept("rack-7", time.Minute, jeans, "2"), entered(jeans, "2"),
		}, []string{jeans}, &Place{Area: "stockroom", Seen: t0, Units: []string{"1"}}},
		{"every unit in a room: the latest area, no units", []step{
			swept("stockroom", 0, jeans, "1"), swept("rack-7", time.Minute, jeans, "2"), entered(jeans, "2"), entered(jeans, "1"),
		}, []string{jeans}, &Place{Area: "rack-7", Seen: t0.Add(time.Minute)}},
		{"serials bounded and cleaned", []step{swept("rack-7", 0, jeans, "", "1", "1", strings.Repeat("9", 21), "2", "3", "4", "5", "6", "7", "8", "9")},
			[]string{jeans}, &Place{Area: "rack-7", Seen: t0, Units: []string{"1", "2", "3", "4", "5", "6", "7", "8"}}},
		{"other item", []step{swept("rack-7", 0, tee, "1")}, []string{jeans}, nil},
		{"not a gtin", []step{swept("rack-7", 0, "nope", "1")}, []string{"nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t, filepath.Join(t.TempDir(), "w.db"), c)
			for i, s := range tt.steps {
				if err := s(b); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			got, ok := b.Where(tt.ask...)
			switch {
			case tt.want == nil && ok:
				t.Fatalf("Where = %+v, want unknown", got)
			case tt.want != nil && (!ok || got.Area != tt.want.Area || !got.Seen.Equal(tt.want.Seen) || !slices.Equal(got.Units, tt.want.Units)):
				t.Fatalf("Where = %+v %v, want %+v", got, ok, *tt.want)
			}
		})
	}
}

// Ensure that a bad area is refused and changes nothing, that the areas
// kept per GTIN are bounded, and that the Book survives a restart and
// forgets sightings older than MaxAge.
func TestBook_BoundsRestartAge(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "w.db")
	b := open(t, path, c)
	for _, area := range []string{"", strings.Repeat("x", MaxArea+1), "bad\xff"} {
		if err := b.Swept(ctx, area, []Sighting{{GTIN: jeans, At: c.Now()}}); !errors.Is(err, ErrArea) {
			t.Fatalf("area %q: %v", area, err)
		}
	}
	if p, ok := b.Where(jeans); ok {
		t.Fatalf("a refused sweep was kept: %+v", p)
	}
	for i := range MaxAreas + 2 {
		c.Add(time.Minute)
		if err := b.Swept(ctx, "rack-"+string(rune('a'+i)), []Sighting{{GTIN: jeans, Serials: []string{"1"}, At: c.Now()}, {GTIN: tee, At: c.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	b = open(t, path, c)
	p, ok := b.Where(jeans)
	if !ok || p.Area != "rack-f" || !slices.Equal(p.Units, []string{"1"}) {
		t.Fatalf("after restart: %+v %v", p, ok)
	}
	var areas int
	_ = b.db.View(func(tx *bolt.Tx) error {
		e, _ := decode(tx.Bucket(bucketGTINs).Get([]byte(jeans)))
		areas = len(e.Areas)
		return nil
	})
	if areas != MaxAreas {
		t.Fatalf("%d areas kept, want %d", areas, MaxAreas)
	}
	b.Close()

	c.Add(DefaultMaxAge + time.Hour)
	b = open(t, path, c)
	if p, ok := b.Where(jeans, tee); ok {
		t.Fatalf("an old sighting is still known: %+v", p)
	}
	var n int
	_ = b.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketGTINs).Stats().KeyN; return nil })
	if n != 0 {
		t.Fatalf("%d old entries kept", n)
	}
}

// BenchmarkSwept records a store-wide sweep of 5,000 GTINs (4 units each)
// into a Book already holding them: one transaction, as EndSweep makes it.
func BenchmarkSwept(b *testing.B) {
	c := &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	book, err := Open(Options{Path: filepath.Join(b.TempDir(), "w.db"), Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer book.Close()
	seen := make([]Sighting, 5000)
	for i := range seen {
		seen[i] = Sighting{GTIN: gtinN(i), Serials: []string{"1", "2", "3", "4"}, At: c.Now()}
	}
	b.ResetTimer()
	for i := range b.N {
		if err := book.Swept(context.Background(), "area-"+string(rune('a'+i%6)), seen); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWhere looks a variant up, as a request is recorded.
func BenchmarkWhere(b *testing.B) {
	c := &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	book, err := Open(Options{Path: filepath.Join(b.TempDir(), "w.db"), Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer book.Close()
	seen := make([]Sighting, 5000)
	for i := range seen {
		seen[i] = Sighting{GTIN: gtinN(i), Serials: []string{"1", "2"}, At: c.Now()}
	}
	for _, area := range []string{"stockroom", "rack-1", "rack-2", "rack-3"} {
		if err := book.Swept(context.Background(), area, seen); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, ok := book.Where(gtinN(i % 5000)); !ok {
			b.Fatal("not found")
		}
	}
}

// gtinN is a valid GTIN-14 numbered n.
func gtinN(n int) string {
	body := fmt.Sprintf("0950600%06d", n)
	cd, _ := gs1.CheckDigit(body)
	return body + string(cd)
}
