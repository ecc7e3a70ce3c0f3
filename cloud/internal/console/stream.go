package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
)

// Stream timing.
const (
	// StreamPing is how often an idle stream sends a keep-alive comment,
	// and re-checks its caller's credentials.
	StreamPing = 15 * time.Second
	// StreamMaxAge ends a stream after this long; the browser reconnects
	// (EventSource does by itself) and is authenticated afresh.
	StreamMaxAge = time.Hour
	// streamRetryMS is the reconnection delay the stream asks browsers for.
	streamRetryMS = 2000
)

// stream is GET /v1/stream: server-sent events, one "change" event per
// committed batch the caller may see (Change, JSON), limited to a store
// manager's stores. A stream that fell behind gets {"all": true}.
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	p := auth.From(r.Context())
	stores, limited := p.Stores()
	rc := http.NewResponseController(w)
	// The server's write timeout bounds ordinary answers; a stream lives
	// until StreamMaxAge, with a deadline per write instead.
	_ = rc.SetWriteDeadline(time.Time{})
	// Likewise its read timeout: net/http clears it itself while it
	// watches for the client going away, and the stream does not depend on
	// that.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	sub := c.o.Broker.Subscribe()
	defer sub.Close()
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(fmt.Sprintf("retry: %d\nevent: hello\ndata: {}\n\n", streamRetryMS)) {
		return
	}
	ping := time.NewTicker(StreamPing)
	defer ping.Stop()
	end := time.NewTimer(StreamMaxAge)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Done():
			return
		case <-end.C:
			return
		case <-ping.C:
			if c.o.Auth != nil {
				if _, err := c.o.Auth.Authenticate(r); err != nil {
					_ = write("event: logout\ndata: {}\n\n")
					return
				}
			}
			if !write(": ping\n\n") {
				return
			}
		case ch := <-sub.C():
			if sub.Lagged() {
				ch = Change{All: true, At: ch.At}
				if limited {
					ch.Locations = stores
				}
			}
			ch, ok := ch.For(stores, limited)
			if !ok {
				continue
			}
			ch.Origin = ""
			data, err := json.Marshal(ch)
			if err != nil || !write("event: change\ndata: "+string(data)+"\n\n") {
				return
			}
		}
	}
}
