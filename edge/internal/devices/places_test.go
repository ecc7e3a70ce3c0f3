package devices

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that a sweep with an area, through a real reader on a pty, makes
// the area the location of what it read on the floor's antennas, with the
// units' serials; that what the fitting room's antenna read never becomes
// a location, and a unit carried into the room leaves its area; that a
// sweep without an area or with a bad one records nothing; and that the
// locations survive a restart of the Book.
func TestRFID_SweepRecordsLocations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "whereabouts.db")
	book, err := whereabouts.Open(whereabouts.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { book.Close() }()
	dev := newPTY(t)
	// Antenna 1 covers the floor by the fitting rooms; antenna 2 is room-1.
	r := newRigOpts(t, Options{Places: book, Devices: []Config{{Name: "floor-1", Port: dev.link, Profile: "uhf-a0-r2000",
		Zones: []ZoneConfig{{Name: "room-1", Antennas: []int{2}}}}}})
	eventually(t, 5*time.Second, func() bool { return r.status("floor-1").State == "open" }, "open")
	go func() { // swallow the reader's poll commands
		buf := make([]byte, 64)
		for {
			if _, err := dev.master.Read(buf); err != nil {
				return
			}
		}
	}()

	// a and b: two units of the jeans; c: another item, only in the room.
	a := []byte{0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85}
	b := slices.Clone(a)
	b[11] = 0x86
	c := slices.Clone(a)
	c[5] = 0x1A
	dec := rfid.NewDecoder(0)
	itemOf := func(epc []byte) rfid.Item {
		it, err := dec.Decode(strings.ToUpper(hex.EncodeToString(epc)))
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	jeans, other := itemOf(a), itemOf(c)
	if jeans.GTIN == other.GTIN {
		t.Fatalf("test tags share GTIN %s", jeans.GTIN)
	}

	if err := r.m.StartSweep("floor-1", SweepRequest{Area: strings.Repeat("x", 65)}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("long area: %v", err)
	}
	// Without an area a sweep counts, and says nothing of where.
	if err := r.m.StartSweep("floor-1", SweepRequest{}); err != nil {
		t.Fatal(err)
	}
	dev.write(a0Frame(0x00, a, 0x50))
	eventually(t, 5*time.Second, func() bool { return r.status("floor-1").TagReads == 1 }, "1 read")
	if ans, err := r.m.EndSweep(context.Background(), "floor-1", "S1"); err != nil || ans.Located != 0 {
		t.Fatalf("sweep without area: %+v %v", ans, err)
	}
	if p, ok := book.Where(jeans.GTIN); ok {
		t.Fatalf("a sweep without an area set a location: %+v", p)
	}

	if err := r.m.StartSweep("floor-1", SweepRequest{Area: "rack-7"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		dev.write(a0Frame(0x00, a, 0x50))
		dev.write(a0Frame(0x00, b, 0x48))
		dev.write(a0Frame(0x01, c, 0x50))
	}
	eventually(t, 5*time.Second, func() bool { return r.status("floor-1").TagReads == 10 }, "10 reads")
	ans, err := r.m.EndSweep(context.Background(), "floor-1", "S1")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Items != 3 || ans.Located != 1 {
		t.Fatalf("sweep %+v: want 3 items counted, 1 GTIN located", ans)
	}
	p, ok := book.Where(jeans.GTIN)
	if !ok || p.Area != "rack-7" || !slices.Equal(p.Units, []string{jeans.Serial, "6790"}) || time.Since(p.Seen) > time.Minute {
		t.Fatalf("jeans: %+v %v", p, ok)
	}
	if p, ok := book.Where(other.GTIN); ok {
		t.Fatalf("a fitting-room read became a location: %+v", p)
	}

	// Unit a is carried into room-1: it is with a shopper, not on rack-7.
	for range 15 {
		dev.write(a0Frame(0x01, a, 0x50))
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, 5*time.Second, func() bool { return len(r.events(t, events.KindEnter)) >= 1 }, "enter room-1")
	eventually(t, 5*time.Second, func() bool {
		p, ok := book.Where(jeans.GTIN)
		return ok && p.Area == "rack-7" && slices.Equal(p.Units, []string{"6790"})
	}, "unit %s taken off rack-7", jeans.Serial)

	book.Close()
	book, err = whereabouts.Open(whereabouts.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := book.Where(jeans.GTIN); !ok || p.Area != "rack-7" || !slices.Equal(p.Units, []string{"6790"}) {
		t.Fatalf("after restart: %+v %v", p, ok)
	}
}
