package kiosk

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices"
)

// Ensure that a mirror's room stream says what is in the room at once and
// again at every change (each GTIN once, in the order they came in), and
// nothing while the room stays the same.
func TestRoomStream(t *testing.T) {
	r := newRig(t, 0, func(o *Options) { o.RoomWatch = 10 * time.Millisecond }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/kiosk/room/"+testZone+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %q", resp.StatusCode, ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		t.Helper()
		var ev, data string
		for lines.Scan() {
			switch l := lines.Text(); {
			case l == "" && data != "":
				if ev != "room" {
					t.Fatalf("event %q", ev)
				}
				return data
			case strings.HasPrefix(l, "event: "):
				ev = l[len("event: "):]
			case strings.HasPrefix(l, "data: "):
				data = l[len("data: "):]
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	if got, want := next(), `["`+r.g.M+`"]`; got != want {
		t.Fatalf("first %s, want %s", got, want)
	}
	// Another room's change is not this room's; the next event is the
	// item brought in here.
	r.room.bring("room-2", devices.PresentItem{GTIN: r.g.S})
	time.Sleep(50 * time.Millisecond)
	r.room.bring(testZone, devices.PresentItem{GTIN: r.g.L})
	if got, want := next(), `["`+r.g.M+`","`+r.g.L+`"]`; got != want {
		t.Fatalf("after a change %s, want %s", got, want)
	}

	c := r.shopper(t)
	if a := r.get(t, c, "/kiosk/room/"+"%01bad"+"/stream"); a.status != http.StatusNotFound {
		t.Fatalf("bad zone: %d", a.status)
	}
	noRooms := newRig(t, 0, func(o *Options) { o.Present = nil }, nil)
	if a := noRooms.get(t, c, "/kiosk/room/"+testZone+"/stream"); a.status != http.StatusNotFound {
		t.Fatalf("no fitting rooms: %d", a.status)
	}
}
