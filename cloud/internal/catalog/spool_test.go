package catalog

import (
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
)

// Ensure that a spool gives back every variant and line in order, as many
// times as asked, leaves no file behind, and refuses to grow once read.
func TestSpool(t *testing.T) {
	dir := t.TempDir() + "/spool"
	s, err := NewSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	vs := Sample(3, 40)
	vs[1].GTINs = append(vs[1].GTINs, gtin13n) // several GTINs
	vs[2].Brand, vs[2].ImageURL = "", ""       // empty fields
	vs[3].PriceMinor = -5                      // Validate's business, not the spool's
	for i, v := range vs {
		if err := s.Add(v, 10*i+1); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != len(vs) || s.Size() <= 0 {
		t.Fatalf("len %d size %d", s.Len(), s.Size())
	}
	for range 2 {
		var got []Variant
		var lines []int
		if err := s.Each(func(v Variant, line int) error {
			got, lines = append(got, v), append(lines, line)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, vs) || len(lines) != len(vs) || lines[4] != 41 {
			t.Fatalf("read back %d variants, lines %v", len(got), lines)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Each(func(Variant, int) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Each did not stop at the first error: %v after %d", err, n)
	}
	if err := s.Add(vs[0], 1); err == nil {
		t.Fatal("Add after Each")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the spool's file is visible: %v", ents)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Ensure that a damaged spool file is an error, not a panic or a huge
// allocation.
func TestSpool_Damaged(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(goodVariant(), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.w.Flush(); err != nil {
		t.Fatal(err)
	}
	// A field length of 2^40, then the end of the file.
	if _, err := s.f.WriteAt([]byte{1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Each(func(Variant, int) error { return nil }); err == nil {
		t.Fatal("read a damaged spool")
	}
	if err := s.f.Truncate(3); err != nil {
		t.Fatal(err)
	}
	s.size = 3
	if err := s.Each(func(Variant, int) error { return nil }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated spool: %v", err)
	}
}
