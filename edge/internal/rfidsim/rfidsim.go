// Package rfidsim plays a fitting-room RFID reader: tagged items carried
// into rooms and out again, reported in the reader's own serial protocol
// (the uhf-a0-r2000 profile's real-time inventory frames) over a
// pseudo-terminal, so the agent reads them through its real serial,
// framing, decoding, smoothing and presence code. `make run` uses it so a
// newcomer sees the mirrors fill and their suggestions appear; tests use
// Reader to put a tag in a room at a chosen signal strength.
//
// Reads follow the links the presence scorer was tuned on
// (presence.LinkSame, LinkWall): an item in room k is read by antenna k at
// about -50 dBm nearly every round and by the neighbouring rooms' antennas,
// through the wall, at about -67 dBm about half as often.
package rfidsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"

	"github.com/omnisync/omnisync/edge/internal/presence"
	"github.com/omnisync/omnisync/shared/epc"
)

// Profile is the reader profile the frames follow.
const Profile = "uhf-a0-r2000"

// FrameA0 encodes one tag report of an R2000-module reader (the 0xA0
// protocol's real-time inventory reply): antenna 1 to 4, the EPC in hex,
// the RSSI in dBm (-129 to -2).
func FrameA0(antenna int, epcHex string, rssi float64) ([]byte, error) {
	if antenna < 1 || antenna > 4 {
		return nil, fmt.Errorf("rfidsim: antenna %d: the a0 protocol has 1 to 4", antenna)
	}
	if len(epcHex)%4 != 0 || len(epcHex) == 0 || len(epcHex) > 62*2 {
		return nil, fmt.Errorf("rfidsim: EPC %q is not whole 16-bit words", epcHex)
	}
	raw := make([]byte, len(epcHex)/2)
	if _, err := fmt.Sscanf(epcHex, "%X", &raw); err != nil {
		return nil, fmt.Errorf("rfidsim: EPC %q: %w", epcHex, err)
	}
	r := int(rssi) + 129
	r = max(0, min(0x7F, r))
	words := len(raw) / 2
	body := []byte{0x01, 0x89, byte(antenna - 1), byte(words << 3), 0x00}
	body = append(body, raw...)
	body = append(body, byte(r))
	f := append([]byte{0xA0, byte(len(body) + 1)}, body...)
	var sum byte
	for _, b := range f {
		sum += b
	}
	return append(f, ^sum+1), nil
}

// EPCFor returns the SGTIN-96 EPC (hex) of a GTIN-14 and serial, with a
// company prefix of 7 digits (any length from 6 to 12 yields an EPC that
// decodes to the same GTIN).
func EPCFor(gtin string, serial int) (string, error) {
	s, err := epc.SGTINFromGTIN(gtin, 7, fmt.Sprint(serial))
	if err != nil {
		return "", err
	}
	return s.Encode(epc.SGTIN96, 1)
}

// Reader is a simulated reader on a pseudo-terminal: the agent opens Path.
type Reader struct {
	// Path is the serial device to configure the agent with.
	Path   string
	master *os.File
	slave  *os.File
	mu     sync.Mutex
	done   chan struct{}
}

// Open makes the pseudo-terminal pair. The reader discards what the agent
// writes (its inventory commands).
func Open() (*Reader, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("rfidsim: pty: %w", err)
	}
	r := &Reader{Path: s.Name(), master: m, slave: s, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_, _ = io.Copy(io.Discard, m)
	}()
	return r, nil
}

// Read reports one read of a tag.
func (r *Reader) Read(antenna int, epcHex string, rssi float64) error {
	f, err := FrameA0(antenna, epcHex, rssi)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = r.master.Write(f)
	return err
}

// Close closes both ends.
func (r *Reader) Close() error {
	err := errors.Join(r.master.Close(), r.slave.Close())
	<-r.done
	return err
}

// Options configures Play.
type Options struct {
	// Rooms is how many rooms (antennas 1..Rooms, at most 4).
	Rooms int
	// GTINs are the items shoppers carry in (GTIN-14s of the catalog).
	GTINs []string
	// Round is the inventory period (250 ms); Every the mean time between
	// shoppers (20 s); Stay the range of a visit (40–120 s).
	Round, Every     time.Duration
	StayMin, StayMax time.Duration
	Seed             uint64
	Logger           *slog.Logger
}

type visitor struct {
	room  int
	epcs  []string
	until time.Time
}

// Play runs shoppers through the rooms until ctx ends: one at a time per
// room, each bringing two or three items, reading them every Round.
func (r *Reader) Play(ctx context.Context, o Options) error {
	if o.Rooms < 1 || o.Rooms > 4 {
		return fmt.Errorf("rfidsim: %d rooms: 1 to 4", o.Rooms)
	}
	if len(o.GTINs) == 0 {
		return errors.New("rfidsim: no GTINs to carry")
	}
	if o.Round <= 0 {
		o.Round = 250 * time.Millisecond
	}
	if o.Every <= 0 {
		o.Every = 20 * time.Second
	}
	if o.StayMin <= 0 {
		o.StayMin = 40 * time.Second
	}
	if o.StayMax <= o.StayMin {
		o.StayMax = o.StayMin + 80*time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	rnd := rand.New(rand.NewPCG(o.Seed, 7))
	visits := make([]*visitor, o.Rooms+1)
	serial := 1000
	next := time.Now()
	t := time.NewTicker(o.Round)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		for k := 1; k <= o.Rooms; k++ {
			if v := visits[k]; v != nil && now.After(v.until) {
				o.Logger.Info("rfidsim: shopper left", "room", presence.RoomName(k))
				visits[k] = nil
			}
		}
		if now.After(next) {
			next = now.Add(o.Every/2 + time.Duration(rnd.Int64N(int64(o.Every))))
			k := 1 + rnd.IntN(o.Rooms)
			if visits[k] == nil {
				v := &visitor{room: k, until: now.Add(o.StayMin + time.Duration(rnd.Int64N(int64(o.StayMax-o.StayMin))))}
				for range 2 + rnd.IntN(2) {
					serial++
					e, err := EPCFor(o.GTINs[rnd.IntN(len(o.GTINs))], serial)
					if err == nil {
						v.epcs = append(v.epcs, e)
					}
				}
				visits[k] = v
				o.Logger.Info("rfidsim: shopper entered", "room", presence.RoomName(k), "items", len(v.epcs))
			}
		}
		for k := 1; k <= o.Rooms; k++ {
			v := visits[k]
			if v == nil {
				continue
			}
			for _, e := range v.epcs {
				for a := 1; a <= o.Rooms; a++ {
					l := presence.LinkSame
					switch d := a - k; {
					case d == 1 || d == -1:
						l = presence.LinkWall
					case d != 0:
						continue
					}
					if rnd.Float64() >= l.P {
						continue
					}
					if err := r.Read(a, e, l.Mean+rnd.NormFloat64()*l.Spread); err != nil {
						return fmt.Errorf("rfidsim: %w", err)
					}
				}
			}
		}
	}
}

// GTINsFromCatalog reads the GTIN-14s of a catalog file: JSON Lines with a
// "gtins" array (the hub's import format) or CSV with a gtin or gtins
// column (several separated by '|').
func GTINsFromCatalog(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(512)
	if b := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"); len(b) > 0 && b[0] == '{' {
		var out []string
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var row struct {
				GTINs []string `json:"gtins"`
			}
			if json.Unmarshal(bytes.TrimPrefix(sc.Bytes(), []byte("\xef\xbb\xbf")), &row) != nil {
				continue
			}
			// The first GTIN the row really has: a blank one tags nothing.
			for _, g := range row.GTINs {
				if g = strings.TrimSpace(g); g != "" {
					out = append(out, g)
					break
				}
			}
		}
		return out, sc.Err()
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("rfidsim: catalog header: %w", err)
	}
	col := -1
	for i, h := range header {
		if h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))); h == "gtin" || h == "gtins" {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("rfidsim: the catalog has no gtin column")
	}
	var out []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("rfidsim: catalog: %w", err)
		}
		if col < len(rec) {
			if g, _, _ := strings.Cut(rec[col], "|"); strings.TrimSpace(g) != "" {
				out = append(out, strings.TrimSpace(g))
			}
		}
	}
}
