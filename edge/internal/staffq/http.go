package staffq

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

//go:embed staff.html
var pageHTML []byte

//go:embed staff.js
var pageJS []byte

// maxBody bounds a claim's body.
const maxBody = 4 << 10

// Register adds the queue's routes to mux: GET /staff/ (the handheld's
// page), GET /staff/staff.js, GET /staff/requests (the queue as JSON),
// GET /staff/stream (Server-Sent Events: the queue at every change),
// POST /staff/requests/{id}/claim ({"by": name}, optional) and POST
// /staff/requests/{id}/done. The agent's guard (apiguard) wraps them like
// every route: the posts must come from the page's own origin.
func (q *Queue) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /staff", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/staff/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /staff/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(pageHTML)
	})
	mux.HandleFunc("GET /staff/staff.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(pageJS)
	})
	mux.HandleFunc("GET /staff/requests", q.list)
	mux.HandleFunc("GET /staff/stream", q.stream)
	mux.HandleFunc("POST /staff/requests/{id}/claim", q.post(func(id, by string) (Request, error) { return q.Claim(id, by) }))
	mux.HandleFunc("POST /staff/requests/{id}/done", q.post(func(id, _ string) (Request, error) { return q.Finish(id) }))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (q *Queue) list(w http.ResponseWriter, r *http.Request) {
	s, err := q.Snapshot()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the queue cannot be read"})
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (q *Queue) post(fn func(id, by string) (Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		var body struct {
			By string `json:"by"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
					return
				}
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON: {\"by\": name}", "field": "by"})
				return
			}
		}
		body.By = strings.TrimSpace(body.By)
		if len(body.By) > 40 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "by: at most 40 characters", "field": "by"})
			return
		}
		req, err := fn(r.PathValue("id"), body.By)
		switch {
		case errors.Is(err, ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such request"})
		case errors.Is(err, ErrState):
			writeJSON(w, http.StatusConflict, map[string]string{"error": "the request is already done"})
		case err != nil:
			q.log.Error("staffq: change failed", "request", r.PathValue("id"), "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the change was not saved"})
		default:
			writeJSON(w, http.StatusOK, req)
		}
	}
}

// stream sends the queue now and at every change, and a comment every 15s
// so idle connections stay open through proxies.
func (q *Queue) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	ctx := r.Context()
	var sent uint64
	first := true
	for {
		v, changed := q.watch()
		if first || v != sent {
			s, err := q.Snapshot()
			if err != nil {
				return
			}
			b, _ := json.Marshal(s)
			if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
				return
			}
			fl.Flush()
			sent, first = s.Version, false
			continue // the snapshot may be newer than v: watch again
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-keep.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// Wait blocks until the queue changes after version v, or ctx ends: for
// tests and tools that follow the queue without a page.
func (q *Queue) Wait(ctx context.Context, v uint64) error {
	for {
		cur, changed := q.watch()
		if cur != v {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
