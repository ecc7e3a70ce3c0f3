package rfidsim

import (
	"path/filepath"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/profile"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

// Ensure that a frame goes through the real reader profile (framing and
// decoding) to the tag, antenna and RSSI it was made from.
func TestFrameA0_ThroughProfile(t *testing.T) {
	p, err := profile.Load(filepath.Join("..", "..", "..", "firmware-configs"), Profile)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := p.NewFramer()
	if err != nil {
		t.Fatal(err)
	}
	e, err := EPCFor("05012302000003", 42)
	if err != nil {
		t.Fatal(err)
	}
	f, err := FrameA0(3, e, -61)
	if err != nil {
		t.Fatal(err)
	}
	var reads []rfid.TagRead
	fr.Feed(append([]byte{0x00, 0x13}, f...), func(frame []byte) {
		reads, err = p.DecodeTags(frame, reads)
		if err != nil {
			t.Fatal(err)
		}
	}, func(framing.Reject, int) {})
	if len(reads) != 1 || reads[0].EPC != e || reads[0].Antenna != 3 || reads[0].RSSI != -61 {
		t.Fatalf("reads %+v, want %s on antenna 3 at -61", reads, e)
	}
	item, err := rfid.NewDecoder(0).Decode(reads[0].EPC)
	if err != nil || item.GTIN != "05012302000003" || item.Serial != "42" {
		t.Fatalf("item %+v %v", item, err)
	}
	if _, err := FrameA0(5, e, -50); err == nil {
		t.Fatal("antenna 5 accepted")
	}
}
