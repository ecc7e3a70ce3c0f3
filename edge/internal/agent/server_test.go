package agent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shortLimits make every server timeout a fraction of a second, so a test
// sees what each does.
var shortLimits = serverLimits{
	readHeader: 300 * time.Millisecond, read: 400 * time.Millisecond, write: 400 * time.Millisecond,
	idle: 400 * time.Millisecond, maxHeaderBytes: 4 << 10,
}

// serve runs newHTTPServer(h, lim) on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler, lim serverLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(h, lim)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// Ensure that the agent's server bounds a slow request, a slow answer,
// an idle connection and oversized headers, while an event stream
// outlives all of these timeouts and still delivers.
func TestServerLimits(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * shortLimits.write)
		fmt.Fprint(w, "too late")
	})
	mux.HandleFunc("POST /body", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprint(w, "read")
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	addr := serve(t, mux, shortLimits)
	base := "http://" + addr

	// A stream lives on, writing, for several times every timeout.
	resp, err := http.Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	start, events := time.Now(), 0
	for time.Since(start) < 6*shortLimits.write && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	resp.Body.Close()
	if time.Since(start) < 6*shortLimits.write || events < 15 {
		t.Fatalf("the stream ended after %v and %d events: %v", time.Since(start).Round(time.Millisecond), events, sc.Err())
	}

	// An ordinary answer that takes longer than the write timeout is cut.
	if resp, err := http.Get(base + "/slow"); err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && string(b) == "too late" {
			t.Fatal("an answer past the write timeout got through")
		}
	}

	// A body that trickles in slower than the read timeout is cut.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if strings.Contains(string(b), "200 OK") {
		t.Fatalf("a trickled body was read whole: %q", b)
	}

	// Oversized headers are refused.
	req, _ := http.NewRequest(http.MethodGet, base+"/stream", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 2*shortLimits.maxHeaderBytes))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %v %v", resp, err)
	}

	// A kept-alive connection left idle is closed.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	idleStart := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v", err)
	}
	if d := time.Since(idleStart); d > 3*shortLimits.idle {
		t.Fatalf("an idle connection was closed after %v", d)
	}
}

// Ensure that the agent's own event streams stay open past its read and
// write timeouts: the scan stream delivers the simulated fitting rooms'
// reads well after the write timeout has passed, and the staff page's
// queue stream is still open then.
func TestAgent_StreamsOutliveTimeouts(t *testing.T) {
	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S8", "mirror-1", "nats://127.0.0.1:1", t.TempDir(), "127.0.0.1:0"
	cfg.Profiles = filepath.Join(repoRoot(), "firmware-configs")
	cfg.SimulateCatalog = filepath.Join(repoRoot(), "cloud", "internal", "catalog", "testdata", "sample-catalog.jsonl")
	cfg.SimulateFittingRooms = 2
	_, base := runAgentWith(t, cfg, func(a *Agent) { a.limits = shortLimits })
	open := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp
	}

	staff := open("/staff/stream")
	defer staff.Body.Close()
	staffEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, staff.Body)
		staffEnded <- err
	}()

	scans := open("/v1/scans/stream")
	defer scans.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(scans.Body)
	late := 0
	for late < 1 && time.Since(start) < 20*time.Second && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") && time.Since(start) > 3*shortLimits.write {
			late++
		}
	}
	if late < 1 {
		t.Fatalf("the scan stream gave %d scans after its write timeout, then %v (after %v)", late, sc.Err(), time.Since(start).Round(time.Millisecond))
	}
	select {
	case err := <-staffEnded:
		t.Fatalf("the staff stream ended: %v", err)
	default:
	}
}
