package scanstream

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// readEvents reads SSE events from resp until n scan events arrived.
func readEvents(t *testing.T, resp *http.Response, n int) (scans []Scan, dropped int) {
	t.Helper()
	sc := bufio.NewScanner(resp.Body)
	event := ""
	deadline := time.AfterFunc(5*time.Second, func() { resp.Body.Close() })
	defer deadline.Stop()
	for len(scans) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			switch event {
			case "scan":
				var s Scan
				if err := json.Unmarshal([]byte(data), &s); err != nil {
					t.Fatal(err)
				}
				scans = append(scans, s)
			case "dropped":
				var d struct{ Dropped int }
				_ = json.Unmarshal([]byte(data), &d)
				dropped += d.Dropped
			}
		}
	}
	return scans, dropped
}

func connect(t *testing.T, url, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	return resp
}

// Ensure that subscribers get every scan in order, and a reconnecting one
// gets what it missed.
func TestBroker_StreamAndResume(t *testing.T) {
	b := New(Options{})
	srv := httptest.NewServer(b)
	// Cleanups run last-in first-out: the streams close before the server.
	t.Cleanup(srv.Close)
	resp := connect(t, srv.URL, "")
	if err := b.Wait(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b.Publish(Scan{Device: "scanner-1", Raw: "0950600013435" + string(rune('0'+i))})
	}
	scans, _ := readEvents(t, resp, 5)
	if len(scans) != 5 || scans[0].ID != 1 || scans[4].ID != 5 || scans[2].Device != "scanner-1" {
		t.Fatalf("scans %+v", scans)
	}
	resp.Body.Close()
	b.Publish(Scan{Raw: "missed-1"})
	b.Publish(Scan{Raw: "missed-2"})
	resp2 := connect(t, srv.URL, "5")
	got, _ := readEvents(t, resp2, 2)
	if len(got) != 2 || got[0].Raw != "missed-1" || got[1].ID != 7 {
		t.Fatalf("resumed %+v", got)
	}
}

// Ensure that a client that does not read never blocks Publish, and is told
// how many scans it lost.
func TestBroker_SlowClientDoesNotBlock(t *testing.T) {
	b := New(Options{Buffer: 4})
	c, _ := b.subscribe(0)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			b.Publish(Scan{Raw: "x"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Publish blocked on a stuck subscriber")
	}
	if len(c.ch) != 4 || b.takeDropped(c) != 996 {
		t.Fatalf("queued %d", len(c.ch))
	}
	b.unsubscribe(c)
	if b.Subscribers() != 0 {
		t.Fatal("subscriber not removed")
	}
}

// Ensure that clients beyond MaxClients are answered 503 and counted, and
// that a place freed by a leaving client is given to the next one.
func TestBroker_MaxClients(t *testing.T) {
	b := New(Options{MaxClients: 2})
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	first := connect(t, srv.URL, "")
	connect(t, srv.URL, "")
	if err := b.Wait(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || b.Refused() != 1 {
		t.Fatalf("third client: %d, Retry-After %q, refused %d", resp.StatusCode, resp.Header.Get("Retry-After"), b.Refused())
	}
	first.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for b.Subscribers() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first client never left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	connect(t, srv.URL, "")
	if b.Refused() != 1 {
		t.Fatalf("refused %d after a place was freed", b.Refused())
	}
}
