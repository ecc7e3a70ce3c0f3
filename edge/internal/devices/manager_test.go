package devices

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/omnisync/omnisync/edge/internal/presence"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/scanstream"
	"github.com/omnisync/omnisync/shared/events"
)

// profilesDir is the repository's shipped profiles.
const profilesDir = "../../../firmware-configs"

// ptyDevice is a pseudo-terminal standing in for a USB serial device, found
// through a by-id style symlink that survives unplugging.
type ptyDevice struct {
	t      *testing.T
	link   string
	master *os.File
	slave  *os.File
}

func newPTY(t *testing.T) *ptyDevice {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "by-id")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &ptyDevice{t: t, link: filepath.Join(dir, "usb-test-device")}
	d.plug()
	t.Cleanup(d.unplug)
	return d
}

func (d *ptyDevice) plug() {
	d.t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		d.t.Fatal(err)
	}
	d.master, d.slave = m, s
	_ = os.Remove(d.link)
	if err := os.Symlink(s.Name(), d.link); err != nil {
		d.t.Fatal(err)
	}
}

func (d *ptyDevice) unplug() {
	if d.master != nil {
		_ = d.master.Close()
		_ = d.slave.Close()
		d.master, d.slave = nil, nil
	}
	_ = os.Remove(d.link)
}

func (d *ptyDevice) write(b []byte) {
	d.t.Helper()
	if _, err := d.master.Write(b); err != nil {
		d.t.Fatal(err)
	}
}

// rig is a manager over real ports with a real outbox and scan broker.
type rig struct {
	m     *Manager
	ob    *outbox.Outbox
	scans *scanstream.Broker
}

func newRig(t *testing.T, cfgs ...Config) *rig {
	t.Helper()
	return newRigWith(t, nil, cfgs...)
}

func newRigWith(t *testing.T, cat Catalog, cfgs ...Config) *rig {
	t.Helper()
	return newRigOpts(t, Options{Devices: cfgs, Catalog: cat})
}

// newRigOpts is newRig with more options (Devices, Catalog, Places).
func newRigOpts(t *testing.T, o Options) *rig {
	t.Helper()
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "outbox.db"), Store: "S1", Device: "kiosk-1", MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{ob: ob, scans: scanstream.New(scanstream.Options{})}
	o.ProfilesDir, o.Sink, o.Scans = profilesDir, ob, r.scans
	o.StallAfter, o.TickEvery = 300*time.Millisecond, 50*time.Millisecond
	r.m, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.m.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		_ = r.m.Close()
		<-done
		ob.Close()
	})
	return r
}

// events returns the outbox's events of kind k.
func (r *rig) events(t *testing.T, k events.Kind) []map[string]any {
	t.Helper()
	recs, err := r.ob.Read(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, rec := range recs {
		var e events.Envelope
		if err := json.Unmarshal(rec.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind == k {
			var body map[string]any
			_ = json.Unmarshal(e.Data, &body)
			out = append(out, body)
		}
	}
	return out
}

func (r *rig) status(name string) Status {
	for _, s := range r.m.Statuses() {
		if s.Name == name {
			return s
		}
	}
	return Status{}
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ensure that a scanner's scans become scan events and stream entries, and
// that garbage, split frames and bad check digits are counted, never turned
// into products.
func TestScanner_ScansGarbageAndSplits(t *testing.T) {
	dev := newPTY(t)
	r := newRig(t, Config{Name: "scanner-1", Port: dev.link, Profile: "generic-line-scanner"})
	eventually(t, 5*time.Second, func() bool { return r.status("scanner-1").State == "open" }, "scanner open")

	srv := httptest.NewServer(r.scans)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if err := r.scans.Wait(context.Background(), 1); err != nil {
		t.Fatal(err)
	}

	dev.write([]byte("]E09506000134352\r\n"))                  // EAN-13
	dev.write([]byte("\x00\x13garbage]E04006381333931\r\n"))   // noise glued to a line: rejected
	dev.write([]byte("]E05012345678901\r\n"))                  // bad check digit
	dev.write([]byte("]C1010950600013435210AB"))               // split GS1-128 ...
	time.Sleep(30 * time.Millisecond)                          //
	dev.write([]byte("C\x1d17261231\r\n]E04006381333931\r\n")) // ... merged with the next scan

	eventually(t, 5*time.Second, func() bool { return len(r.events(t, events.KindScan)) == 3 }, "3 scan events, have %v", r.events(t, events.KindScan))
	got := r.events(t, events.KindScan)
	wantGTIN := []string{"09506000134352", "09506000134352", "04006381333931"}
	for i, g := range got {
		if g["gtin"] != wantGTIN[i] || g["device"] != "scanner-1" {
			t.Fatalf("scan %d = %v, want gtin %s", i, g, wantGTIN[i])
		}
	}
	if ais, _ := got[1]["ais"].(map[string]any); ais["10"] != "ABC" || ais["17"] != "261231" {
		t.Fatalf("GS1-128 AIs: %v", got[1])
	}
	st := r.status("scanner-1")
	if st.FramesRead != 5 || st.FramesRejected != 2 || st.Scans != 3 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}

	// The stream got the three scans in order.
	sc := bufio.NewScanner(resp.Body)
	var streamed []scanstream.Scan
	for len(streamed) < 3 && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var s scanstream.Scan
			if json.Unmarshal([]byte(data), &s) == nil && s.Raw != "" {
				streamed = append(streamed, s)
			}
		}
	}
	if len(streamed) != 3 || streamed[0].GTIN != "09506000134352" || streamed[2].Symbology == "" {
		t.Fatalf("streamed %+v", streamed)
	}
}

// Ensure that unplugging and re-plugging a scanner is reported with
// device_status events and scanning resumes by itself.
func TestScanner_UnplugReplug(t *testing.T) {
	dev := newPTY(t)
	r := newRig(t, Config{Name: "scanner-1", Port: dev.link, Profile: "generic-line-scanner"})
	eventually(t, 5*time.Second, func() bool { return r.status("scanner-1").State == "open" }, "open")
	dev.write([]byte("]E09506000134352\r\n"))
	eventually(t, 5*time.Second, func() bool { return len(r.events(t, events.KindScan)) == 1 }, "first scan")

	dev.unplug()
	eventually(t, 5*time.Second, func() bool { return r.status("scanner-1").State == "reopening" }, "reopening after unplug")
	dev.plug()
	eventually(t, 10*time.Second, func() bool { return r.status("scanner-1").State == "open" }, "open after re-plug")
	dev.write([]byte("]E04006381333931\r\n"))
	eventually(t, 5*time.Second, func() bool { return len(r.events(t, events.KindScan)) == 2 }, "scan after re-plug")

	var states []string
	for _, e := range r.events(t, events.KindDeviceStatus) {
		states = append(states, e["state"].(string))
	}
	if strings.Join(states, ",") != "open,reopening,open" {
		t.Fatalf("device_status states %v", states)
	}
	if st := r.status("scanner-1"); st.Reopens != 1 {
		t.Fatalf("status %+v", st)
	}
}

// Ensure that a fitting-room reader is polled, and that an item read a few
// times a second becomes one enter event with its GTIN and serial.
func TestRFID_FittingRoomEnter(t *testing.T) {
	dev := newPTY(t)
	r := newRig(t, Config{Name: "fr-1", Port: dev.link, Profile: "uhf-a0-r2000",
		Zones: []ZoneConfig{{Name: "room-1", Antennas: []int{1}}, {Name: "room-2", Antennas: []int{2}}}})
	eventually(t, 5*time.Second, func() bool { return r.status("fr-1").State == "open" }, "open")

	// The agent asks the reader for tags.
	var mu sync.Mutex
	var fromAgent []byte
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := dev.master.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			fromAgent = append(fromAgent, buf[:n]...)
			mu.Unlock()
		}
	}()
	eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(string(fromAgent), "\xA0\x04\xFF\x89\x01\xD3")
	}, "inventory command sent")

	// The TDS example SGTIN-96 tag on antenna 1, plus one corrupt frame.
	epc := []byte{0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85}
	frame := a0Frame(0x00, epc, 0x50)
	bad := append([]byte(nil), frame...)
	bad[len(bad)-1] ^= 0xFF
	dev.write(bad)
	for i := 0; i < 15; i++ {
		dev.write(frame)
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, 5*time.Second, func() bool { return len(r.events(t, events.KindEnter)) == 1 }, "one enter event")
	e := r.events(t, events.KindEnter)[0]
	if e["zone"] != "room-1" || e["gtin"] != "80614141123458" || e["serial"] != "6789" {
		t.Fatalf("enter %v", e)
	}
	st := r.status("fr-1")
	if st.TagReads != 15 || st.FramesRejected < 1 || len(st.Present["room-1"]) != 1 || st.Enters != 1 {
		t.Fatalf("status %+v", st)
	}
	if p := st.Present["room-1"][0]; p.Score < presence.DefaultEnter || len(st.Scores["room-1"]) != 1 || !st.Scores["room-1"][0].Shown {
		t.Fatalf("presence score %+v, scores %+v", p, st.Scores)
	}
}

// a0Frame builds a 0xA0-family real-time inventory reply for one tag.
func a0Frame(freqAnt byte, epc []byte, rssi byte) []byte {
	words := len(epc) / 2
	body := []byte{0x01, 0x89, freqAnt, byte(words << 3), 0x00}
	body = append(body, epc...)
	body = append(body, rssi)
	f := append([]byte{0xA0, byte(len(body) + 1)}, body...)
	var sum byte
	for _, b := range f {
		sum += b
	}
	return append(f, -sum)
}

// Ensure that a device whose profile is missing or whose settings are wrong
// is refused at start-up with its name.
func TestNew_BadConfig(t *testing.T) {
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "o.db"), Store: "S1", Device: "d", MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "s1", Port: "/dev/x", Profile: "no-such-profile"}, "no-such-profile"},
		{Config{Name: "", Port: "/dev/x", Profile: "generic-line-scanner"}, "name"},
		{Config{Name: "s1", Profile: "generic-line-scanner"}, "port"},
		{Config{Name: "s1", Port: "/dev/x", Profile: "generic-line-scanner", Zones: []ZoneConfig{{Name: "z", Antennas: []int{1}}}}, "zones"},
	}
	for _, tt := range tests {
		_, err := New(Options{Devices: []Config{tt.cfg}, ProfilesDir: profilesDir, Sink: ob})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want mention of %q", tt.cfg, err, tt.want)
		}
	}
}

// Ensure that a sweep counts each distinct item once and records absolute
// count events per GTIN.
func TestRFID_Sweep(t *testing.T) {
	dev := newPTY(t)
	r := newRig(t, Config{Name: "handheld", Port: dev.link, Profile: "uhf-a0-r2000"})
	eventually(t, 5*time.Second, func() bool { return r.status("handheld").State == "open" }, "open")
	go func() { // swallow the reader's poll commands
		buf := make([]byte, 64)
		for {
			if _, err := dev.master.Read(buf); err != nil {
				return
			}
		}
	}()
	if err := r.m.StartSweep("handheld", SweepRequest{Area: "rack-7"}); err != nil {
		t.Fatal(err)
	}
	if err := r.m.StartSweep("handheld", SweepRequest{}); err != ErrSweeping {
		t.Fatalf("second start: %v", err)
	}
	// Two serials of one GTIN, each read three times.
	a := []byte{0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85}
	b := append([]byte(nil), a...)
	b[11] = 0x86
	for i := 0; i < 3; i++ {
		dev.write(a0Frame(0x00, a, 0x50))
		dev.write(a0Frame(0x01, b, 0x48))
	}
	eventually(t, 5*time.Second, func() bool { return r.status("handheld").TagReads == 6 }, "6 reads")
	ans, err := r.m.EndSweep(context.Background(), "handheld", "S1")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Items != 2 || len(ans.Counts) != 1 || ans.Counts[0].GTIN != "80614141123458" || ans.Counts[0].Qty != 2 || ans.Events != 1 {
		t.Fatalf("sweep %+v", ans)
	}
	counts := r.events(t, events.KindCount)
	if len(counts) != 1 {
		t.Fatalf("count events %v", counts)
	}
	if _, err := r.m.EndSweep(context.Background(), "handheld", "S1"); err != ErrNoSweep {
		t.Fatalf("second end: %v", err)
	}
}

// catalog is a fixed GTIN table standing in for the agent's cache.
type catalog map[string]ProductRef

func (c catalog) ProductForGTIN(gtin string) (ProductRef, bool) { r, ok := c[gtin]; return r, ok }

// Ensure that with a catalog a scan carries its product (event and stream)
// and sweep counts are recorded per SKU, GTINs of one SKU added up.
func TestCatalog_ScansAndSweepsBySKU(t *testing.T) {
	cat := catalog{
		"09506000134352": {ID: "P-1", SKU: "TEE-1-M", Name: "Tee"},
		"80614141123458": {ID: "P-2", SKU: "JEAN-32", Name: "Jeans"},
	}
	scanner, reader := newPTY(t), newPTY(t)
	r := newRigWith(t, cat, Config{Name: "scanner-1", Port: scanner.link, Profile: "generic-line-scanner"},
		Config{Name: "handheld", Port: reader.link, Profile: "uhf-a0-r2000"})
	eventually(t, 5*time.Second, func() bool {
		return r.status("scanner-1").State == "open" && r.status("handheld").State == "open"
	}, "devices open")
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := reader.master.Read(buf); err != nil {
				return
			}
		}
	}()
	scanner.write([]byte("]E09506000134352\r\n"))
	scanner.write([]byte("]E04006381333931\r\n")) // not in the catalog
	eventually(t, 5*time.Second, func() bool { return len(r.events(t, events.KindScan)) == 2 }, "2 scans")
	scans := r.events(t, events.KindScan)
	if scans[0]["sku"] != "TEE-1-M" || scans[1]["sku"] != nil {
		t.Fatalf("scan events %v", scans)
	}
	recent := r.scans.Recent()
	if len(recent) != 2 || recent[0].Product == nil || recent[1].Product != nil {
		t.Fatalf("stream %+v", recent)
	}

	if err := r.m.StartSweep("handheld", SweepRequest{Area: "rack-1"}); err != nil {
		t.Fatal(err)
	}
	a := []byte{0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85}
	for i := 0; i < 3; i++ {
		reader.write(a0Frame(0x00, a, 0x50))
	}
	eventually(t, 5*time.Second, func() bool { return r.status("handheld").TagReads == 3 }, "3 reads")
	if _, err := r.m.EndSweep(context.Background(), "handheld", "S1"); err != nil {
		t.Fatal(err)
	}
	counts := r.events(t, events.KindCount)
	lines, _ := counts[0]["lines"].([]any)
	if len(counts) != 1 || len(lines) != 1 || lines[0].(map[string]any)["sku"] != "JEAN-32" {
		t.Fatalf("count events %v", counts)
	}
}

// Ensure that GTINs of one SKU are added up and unknown ones kept.
func TestBySKU(t *testing.T) {
	cat := catalog{"1": {SKU: "A"}, "2": {SKU: "A"}}
	got := bySKU([]rfid.GTINCount{{GTIN: "1", Qty: 2}, {GTIN: "3", Qty: 1}, {GTIN: "2", Qty: 5}}, cat)
	want := []rfid.GTINCount{{GTIN: "A", Qty: 7}, {GTIN: "3", Qty: 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("bySKU = %v, want %v", got, want)
	}
}
