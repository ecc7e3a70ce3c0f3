package loadgen

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/omnisync/omnisync/shared/events"
)

// recorder keeps the accepted envelopes in memory and, optionally, writes
// them as JSON Lines.
type recorder struct {
	mu   sync.Mutex
	envs []events.Envelope
	w    *bufio.Writer
	err  error // the first write error; writing stops there
}

func newRecorder(w io.Writer) *recorder {
	r := &recorder{}
	if w != nil {
		r.w = bufio.NewWriterSize(w, 64<<10)
	}
	return r
}

func (r *recorder) add(envs []events.Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.envs = append(r.envs, envs...)
	if r.w == nil || r.err != nil {
		return
	}
	for _, e := range envs {
		b, err := json.Marshal(e)
		if err == nil {
			b = append(b, '\n')
			_, err = r.w.Write(b)
		}
		if err != nil {
			r.err = err
			return
		}
	}
}

func (r *recorder) flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil && r.err == nil {
		r.err = r.w.Flush()
	}
	return r.err
}

func (r *recorder) snapshot() []events.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Envelope(nil), r.envs...)
}

// ReadRecord reads envelopes written by Options.Record (JSON Lines, one
// envelope a line). A line cut short at the very end (the generator was
// killed mid-write) is dropped; anything else malformed is an error naming
// its line.
func ReadRecord(r io.Reader) ([]events.Envelope, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var out []events.Envelope
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(b))) > 0 {
			var e events.Envelope
			if jerr := json.Unmarshal(b, &e); jerr != nil {
				if errors.Is(err, io.EOF) {
					return out, nil // a torn last line
				}
				return out, fmt.Errorf("loadgen: record line %d: %w", line, jerr)
			}
			if e.ID == "" || e.Origin.Store == "" || e.Origin.Device == "" {
				return out, fmt.Errorf("loadgen: record line %d: not an envelope", line)
			}
			out = append(out, e)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
