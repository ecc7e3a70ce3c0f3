package decode

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// The decoders must never panic, must fail with one of the package's
// sentinels, and every read they return must be backed byte for byte by
// the payload: an EPC that is not in the frame would be a wrong product.
// Seeds: testdata/fuzz/<target>/ and the f.Add calls.

func FuzzA0Inventory(f *testing.F) {
	for _, h := range []string{
		"13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45",
		"0A 01 89 01 00 2A 00 00 00 7B", "04 01 89 22", "04 01 72 10",
	} {
		f.Add(unhex(f, h))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkDecoder(t, A0Inventory, p, 4) })
}

func FuzzBBInventory(f *testing.F) {
	for _, h := range []string{
		"02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76",
		"01 FF 00 01 15", "01 FF 00 01 17", "00 27 00 03 22 27 10",
	} {
		f.Add(unhex(f, h))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkDecoder(t, BBInventory, p, 1) })
}

func checkDecoder(t *testing.T, fn Func, p []byte, maxAntenna int) {
	in := bytes.Clone(p)
	reads, err := fn(p, nil)
	if !bytes.Equal(in, p) {
		t.Fatal("decoder modified its input")
	}
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrReaderStatus) && !errors.Is(err, ErrNotTagReport) {
			t.Fatalf("error without a sentinel: %v", err)
		}
		if len(reads) != 0 {
			t.Fatalf("reads %v with error %v", reads, err)
		}
		return
	}
	if len(reads) > 1 {
		t.Fatalf("%d reads from one frame", len(reads))
	}
	for _, r := range reads {
		epc, herr := hex.DecodeString(r.EPC)
		if herr != nil || len(epc) == 0 || len(epc)%2 != 0 || !bytes.Contains(p, epc) {
			t.Fatalf("EPC %q is not a whole-word EPC taken from the payload % X", r.EPC, p)
		}
		if r.Antenna < 1 || r.Antenna > maxAntenna || r.RSSI > 0 || r.RSSI < -129 {
			t.Fatalf("implausible read %+v", r)
		}
	}
}
