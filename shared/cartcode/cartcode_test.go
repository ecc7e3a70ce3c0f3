package cartcode

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	imagepng "image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/omnisync/omnisync/shared/events"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "omnisync cart code test key seed")
	return ed25519.NewKeyFromSeed(seed)
}

func price(v int64) *int64 { return &v }

// tenLines is a realistic 10-line cart: catalog SKUs like the seed data's.
func tenLines() Snapshot {
	s := Snapshot{Carts: []string{"k5q3zt7mbc2wfy4nd6xr2hjpva"}, Version: 37, IssuedAt: 1_764_950_400}
	for i := range 10 {
		s.Lines = append(s.Lines, Line{SKU: fmt.Sprintf("SKU-%06d-M", 100200+i*37), Qty: int64(1 + i%3), UnitPrice: price(int64(1999 + 500*i))})
	}
	return s
}

// Ensure that a signed code verifies and reads back the same snapshot.
func TestSignVerify_RoundTrip(t *testing.T) {
	key := testKey(t)
	keys := Keys{KeyID(key.Public().(ed25519.PublicKey)): key.Public().(ed25519.PublicKey)}
	s := tenLines()
	s.Lines[3].UnitPrice = nil
	code, err := Sign(key, s)
	if err != nil {
		t.Fatal(err)
	}
	if !IsCode(code) || strings.Trim(code[len(Prefix):], "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Fatalf("code is not prefix + base32: %q", code)
	}
	got, err := Verify(code, keys, time.Unix(s.IssuedAt+60, 0), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	if !reflect.DeepEqual(got.Lines, s.Lines) || got.Version != s.Version || got.Carts[0] != s.Carts[0] || got.KeyID != s.KeyID {
		t.Fatalf("got %+v, want %+v", got, s)
	}
}

// Ensure that tampering, an unknown key, age and other barcodes are refused
// with the error callers branch on.
func TestVerify_Refusals(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	keys := Keys{KeyID(pub): pub}
	s := tenLines()
	code, _ := Sign(key, s)
	at := time.Unix(s.IssuedAt, 0)
	// Change one line's quantity and sign nothing: the signature fails.
	s2 := s
	s2.Lines = append([]Line(nil), s.Lines...)
	s2.Lines[0].Qty = 99
	forged, _ := Sign(key, s2)
	tampered := code[:len(Prefix)] + forged[len(Prefix):len(forged)-103] + code[len(code)-103:]
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	foreign, _ := Sign(otherKey, s)
	_ = otherPub
	for _, tc := range []struct {
		name string
		text string
		now  time.Time
		want error
	}{
		{"tampered", tampered, at, ErrBadSignature},
		{"unknown key", foreign, at, ErrUnknownKey},
		{"too old", code, at.Add(2 * time.Hour), ErrExpired},
		{"from the future", code, at.Add(-time.Hour), ErrExpired},
		{"a GTIN", "]E04006381333931", at, ErrNotCartCode},
		{"bad base32", Prefix + "ABC1", at, ErrMalformed},
		{"truncated", code[:len(code)-10], at, ErrMalformed},
		{"lowercase", strings.ToLower(code), at, ErrNotCartCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.text, keys, tc.now, time.Hour); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// Ensure that a snapshot the format cannot carry is refused when signing.
func TestSign_RefusesBadSnapshots(t *testing.T) {
	key := testKey(t)
	for name, s := range map[string]Snapshot{
		"no cart":          {},
		"bad cart id":      {Carts: []string{"NOT-A-CART"}},
		"zero qty":         {Carts: []string{NewCartID()}, Lines: []Line{{SKU: "S", Qty: 0}}},
		"sku with a space": {Carts: []string{NewCartID()}, Lines: []Line{{SKU: "S 1", Qty: 1}}},
	} {
		if _, err := Sign(key, s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Ensure that minted cart ids are valid, canonical and distinct.
func TestNewCartID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewCartID()
		if err := events.ValidCartID(id); err != nil || seen[id] {
			t.Fatalf("%q: %v", id, err)
		}
		seen[id] = true
	}
	if events.ValidCartID("aaaaaaaaaaaaaaaaaaaaaaaaab") == nil {
		t.Fatal("a non-canonical id accepted")
	}
}

// Ensure that the key file is made once, kept private, and read back.
func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub", KeyFile)
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("key not read back: %v", err)
	}
	os.WriteFile(path, []byte("junk"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("junk key accepted")
	}
}

// TestQR_TenLineCart reports the size of a 10-line cart's code and the QR
// version that carries it, and checks it stays a version a scanner reads
// at arm's length (at most 15 at level M: 77 x 77 modules).
func TestQR_TenLineCart(t *testing.T) {
	// The sample catalog's SKUs are 17-18 characters ("FTW-000001-NVY-42");
	// a merged cart names up to MaxCarts carts.
	catalog := tenLines()
	for i := range catalog.Lines {
		catalog.Lines[i].SKU = fmt.Sprintf("FTW-%06d-NVY-%d", 100200+i*37, 38+i%8)
	}
	merged := catalog
	merged.Carts = nil
	for i := range MaxCarts {
		merged.Carts = append(merged.Carts, "k5q3zt7mb"+string(rune('a'+i))+"2wfy4nd6xr2hjpva")
	}
	for _, tc := range []struct {
		name string
		s    Snapshot
	}{
		{"12-character SKUs", tenLines()},
		{"catalog SKUs", catalog},
		{"catalog SKUs, 8 carts merged", merged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := Sign(testKey(t), tc.s)
			if err != nil {
				t.Fatal(err)
			}
			q, err := Render(code)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("10-line cart: code %d characters (%d bytes binary), QR version %d-%s, %dx%d modules", len(code), (len(code)-len(Prefix))*5/8, q.Version, q.Level, q.Modules, q.Modules)
			if q.Version > DenseVersion {
				t.Fatalf("QR version %d is too dense for reliable scanning", q.Version)
			}
			if png := q.PNG(4); len(png) < 100 || string(png[1:4]) != "PNG" {
				t.Fatal("not a PNG")
			}
			// A scanner reads the symbol back, at 2 pixels a module (a
			// phone's screen seen through a till's imager) and at 4.
			for _, scale := range []int{2, 4} {
				if got := decodeQR(t, q.PNG(scale)); got != code {
					t.Fatalf("scale %d: the symbol reads %q, want the code", scale, got)
				}
			}
			if svg := q.SVG(); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "v1h-") {
				t.Fatal("not an SVG")
			}
		})
	}
}

// decodeQR reads a PNG's QR symbol with ZXing's decoder (a Go port), as
// an independent reader of what Render draws.
func decodeQR(t *testing.T, png []byte) string {
	t.Helper()
	img, err := imagepng.Decode(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res.GetText()
}

func BenchmarkVerify(b *testing.B) {
	key := testKey(b)
	pub := key.Public().(ed25519.PublicKey)
	keys := Keys{KeyID(pub): pub}
	code, _ := Sign(key, tenLines())
	now := time.Unix(tenLines().IssuedAt, 0)
	for b.Loop() {
		if _, err := Verify(code, keys, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
