package posapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/outbox"
)

// FuzzPostEvents posts what a till (or anything on the machine) might send
// to POST /v1/events, with and without an Idempotency-Key, against a real
// outbox, and checks the API's promises: never a 5xx; a 4xx writes
// nothing and the same request gets the same 4xx again; a 202 lists
// exactly the events it wrote; with a key, the same request again is
// answered with the first answer (Idempotent-Replayed) and writes
// nothing, and another body under that key writes nothing either: it is
// refused, or, if it asks for the same events, answered as the replay.
func FuzzPostEvents(f *testing.F) {
	for _, s := range []struct{ body, key, other string }{
		{`{"kind":"sale","data":{"lines":[{"sku":"SKU-00001","qty":2}]}}`, "till-3-receipt-991", `{"kind":"sale","data":{"lines":[{"sku":"SKU-00001","qty":3}]}}`},
		{`[{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}},{"kind":"count","data":{"lines":[{"sku":"A","qty":9}]}}]`, "R-1001", `[{"kind":"sale", "data":{"lines":[{"sku":"A","qty":1}]}},{"kind":"count","data":{"lines":[{"sku":"A","qty":9}]}}]`},
		{`{"kind":"return","data":{"lines":[{"sku":"FTW-000001-NVY-42","qty":1}]}}`, "", `{}`},
		{`{"kind":"adjust","data":{"lines":[{"sku":"A","qty":-2}],"reason":"damaged"}}`, "adj-7", `[]`},
		{`{"kind":"reserve","data":{"reservation_id":"ORDER-1001","lines":[{"sku":"A","qty":1}]}}`, "web-ORDER-1001", `{"kind":"release","data":{"reservation_id":"ORDER-1001"}}`},
		{`{"kind":"sale","data":{"lines":[{"sku":"A","qty":0}]}}`, "till-1-zero", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}}`},
		{`{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}}`, "bad key", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}}`},
		{`not json`, "k", ``},
		{`{"kind":"count","data":{"method":"rfid_sweep","snapshot_at":"2026-06-01T10:00:00Z","lines":[{"sku":"A","qty":4}]}}`, "sweep-1", `{"kind":"count","data":{"lines":[{"sku":"A","qty":4}]}}`},
	} {
		f.Add([]byte(s.body), s.key, []byte(s.other))
	}
	f.Fuzz(func(t *testing.T, body []byte, key string, other []byte) {
		ob, err := outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "outbox.db"), Store: "S1", Device: "pos-1", MinFreeDisk: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer ob.Close()
		mux := http.NewServeMux()
		New(Options{Store: "S1", Outbox: ob, Status: func() any { return ob.Stats() }}).Register(mux)
		post := func(b []byte) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(b))
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%d for %q (key %q): %s", rec.Code, b, key, rec.Body)
			}
			return rec
		}
		depth := func() uint64 { return ob.Stats().LastSeq }

		first := post(body)
		written := depth()
		switch first.Code {
		case http.StatusAccepted:
			var acc Accepted
			if err := json.Unmarshal(first.Body.Bytes(), &acc); err != nil {
				t.Fatalf("202 body %s: %v", first.Body, err)
			}
			if uint64(len(acc.IDs)) != written || len(acc.Seqs) != len(acc.IDs) || len(acc.HLCs) != len(acc.IDs) || written == 0 {
				t.Fatalf("202 listing %d events for %d written: %s", len(acc.IDs), written, first.Body)
			}
		default:
			if first.Code < 400 || first.Code >= 500 {
				t.Fatalf("answer %d", first.Code)
			}
			if written != 0 {
				t.Fatalf("a %d wrote %d events", first.Code, written)
			}
		}

		again := post(body)
		switch {
		case first.Code != http.StatusAccepted:
			if again.Code != first.Code || !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) || depth() != written {
				t.Fatalf("the same refused request: %d %s, then %d %s", first.Code, first.Body, again.Code, again.Body)
			}
		case key != "":
			if again.Code != http.StatusAccepted || again.Header().Get("Idempotent-Replayed") != "true" ||
				!bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) || depth() != written {
				t.Fatalf("a retry with its key: %d %v %s (first %s), %d events written", again.Code, again.Header(), again.Body, first.Body, depth())
			}
		}

		if key == "" || first.Code != http.StatusAccepted {
			return
		}
		written = depth()
		reused := post(other)
		if depth() != written {
			t.Fatalf("another body under a used key wrote events: %d %s", reused.Code, reused.Body)
		}
		if reused.Code == http.StatusAccepted && (reused.Header().Get("Idempotent-Replayed") != "true" || !bytes.Equal(reused.Body.Bytes(), first.Body.Bytes())) {
			t.Fatalf("another body under a used key was accepted as new: %s", reused.Body)
		}
	})
}
