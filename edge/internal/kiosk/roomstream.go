package kiosk

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices"
)

// roomStream tells a mirror page when its room's items change (GET
// /kiosk/room/{zone}/stream, Server-Sent Events: an event "room" with the
// GTINs listed, at once and at every change), so an item shows as soon as
// the agent accepts it into the room and not at the page's next periodic
// refresh (RoomRefresh, which still catches stock and suggestion changes,
// and the room when the stream is down). It looks at the room every
// RoomWatch: the presence scorer's decisions have no notification of their
// own, and reading them is cheap. It does not count as the shopper's
// activity, and needs no session: GTINs of what is in a room are what the
// mirror shows anyone standing in front of it.
func (k *Kiosk) roomStream(w http.ResponseWriter, r *http.Request) {
	p := placeOf(url.Values{"zone": {r.PathValue("zone")}})
	if p.Zone == "" || k.o.Present == nil {
		http.NotFound(w, r)
		return
	}
	// Each stream reads the rooms every RoomWatch, so their number is
	// capped as the scan stream's is; a page turned away still refreshes
	// on its timer.
	if k.streams.Add(1) > maxRoomStreams {
		k.streams.Add(-1)
		http.Error(w, "too many room streams", http.StatusServiceUnavailable)
		return
	}
	defer k.streams.Add(-1)
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	watch := time.NewTicker(k.o.RoomWatch)
	defer watch.Stop()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	var sent []byte
	for {
		b, _ := json.Marshal(k.roomGTINs(p.Zone))
		if sent == nil || string(b) != string(sent) {
			if _, err := w.Write(append(append([]byte("event: room\ndata: "), b...), '\n', '\n')); err != nil {
				return
			}
			fl.Flush()
			sent = b
		}
		select {
		case <-r.Context().Done():
			return
		case <-watch.C:
		case <-keep.C:
			// A comment keeps an idle stream open through proxies.
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// maxRoomStreams caps the room streams open at once: a store's mirrors
// and the odd page left open, as the scan stream's MaxClients.
const maxRoomStreams = 32

// presentCache keeps what Present said for a while, so every room stream
// and page in that while reads the devices once (Present builds every
// reader's status under its lock, the lock its serial read path takes).
type presentCache struct {
	mu  sync.Mutex
	at  time.Time
	val map[string][]devices.PresentItem
}

// presentNow is Present, read at most once per half RoomWatch.
func (k *Kiosk) presentNow() map[string][]devices.PresentItem {
	c := &k.present
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.val == nil || now.Sub(c.at) >= k.o.RoomWatch/2 {
		c.val, c.at = k.o.Present(), now
	}
	return c.val
}

// roomGTINs lists the items of a room as the mirror shows them: in the
// order they came in, each GTIN once, at most maxRoomItems.
func (k *Kiosk) roomGTINs(zone string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, it := range k.presentNow()[zone] {
		if it.GTIN == "" || seen[it.GTIN] || len(out) >= maxRoomItems {
			continue
		}
		seen[it.GTIN] = true
		out = append(out, it.GTIN)
	}
	return out
}
