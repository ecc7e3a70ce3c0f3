// Package cartcode is the signed handoff code of a cart: a snapshot of the
// cart (its ids, lines, prices, version and when it was issued) signed
// with the hub's Ed25519 key, spelled so a QR code of it stays small and a
// serial scanner can send it as one line of text. A till that holds the
// hub's public key (down-synced to every store) accepts the code with its
// uplink down, and reconciles the checkout later.
//
// The code is the text Prefix followed by the unpadded RFC 4648 base32 of
// the binary snapshot and its signature. Base32's alphabet (A-Z, 2-7) is a
// subset of the QR alphanumeric mode (5.5 bits a character), so the QR
// code carries it at 91% of the density of raw bytes, and a scanner in
// keyboard or serial mode cannot mangle it (no lowercase, no spaces, no
// control characters). A 10-line cart is 409 characters with 12-character
// SKUs (version 12 at error correction level M, 65 x 65 modules) and 489
// with the sample catalog's 17-character SKUs (version 14-M, 73 x 73);
// merged from 8 carts, 668 (version 15-L: see Render). TestQR_TenLineCart
// reads each back with an independent decoder.
//
// The binary snapshot (all integers unsigned varints):
//
//	1 byte   format (1)
//	4 bytes  key id: the first 4 bytes of SHA-256 of the public key
//	uvarint  issued at, Unix seconds
//	uvarint  version of the cart
//	1 byte   number of carts (1 to MaxCarts), then 16 bytes each
//	uvarint  number of lines (0 to MaxLines), then for each:
//	         1 byte SKU length, the SKU, uvarint qty, uvarint price+1 (0: no price)
//	64 bytes Ed25519 signature of SignContext + every byte before it
//
// Sharp edges: the code is a bearer snapshot, not the cart: a till must
// still refuse a code older than it accepts (Verify's maxAge) and record
// the checkout under the snapshot's version, so the hub can tell a second
// checkout of the same snapshot from a sale.
package cartcode

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Prefix starts every cart code. It cannot begin a GTIN, a GS1 element
// string or a Digital Link URI, so a scan starting with it is a cart.
const Prefix = "OC1:"

// SignContext is prepended to the snapshot before signing, so a signature
// of a cart code can never be replayed as the signature of anything else
// the key signs.
const SignContext = "omnisync cart code v1\x00"

// Limits of a snapshot.
const (
	MaxCarts = 8
	MaxLines = 100
	// MaxCodeLen bounds a code's text (a version 40 QR code holds 4,296
	// alphanumeric characters at level L; a scanner line 4,096 bytes).
	MaxCodeLen = 4000
	format     = 1
	sigLen     = ed25519.SignatureSize
)

// Errors callers branch on.
var (
	// ErrNotCartCode: the text does not start with Prefix (it is some other
	// barcode).
	ErrNotCartCode = errors.New("cartcode: not a cart code")
	// ErrMalformed: it starts like a cart code but does not decode.
	ErrMalformed = errors.New("cartcode: malformed cart code")
	// ErrUnknownKey: signed by a key this side does not know (yet).
	ErrUnknownKey = errors.New("cartcode: signed by an unknown key")
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = errors.New("cartcode: bad signature")
	// ErrExpired: older than the caller accepts, or issued in the future.
	ErrExpired = errors.New("cartcode: code too old")
)

var (
	b32    = base32.StdEncoding.WithPadding(base32.NoPadding)
	cartID = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

// NewCartID mints a cart id: 128 random bits (events.ValidCartID).
func NewCartID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("cartcode: no randomness: " + err.Error())
	}
	return cartID.EncodeToString(b[:])
}

// Line is one line of a snapshot.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
	// UnitPrice in minor units; nil when the cart had none for the line.
	UnitPrice *int64 `json:"unit_price,omitempty"`
}

// Snapshot is a cart as the code carries it.
type Snapshot struct {
	// Carts: the primary cart first, then any cart merged into the view;
	// a checkout closes them all.
	Carts    []string `json:"carts"`
	Lines    []Line   `json:"lines"`
	Version  int64    `json:"version"`
	IssuedAt int64    `json:"issued_at"` // Unix seconds
	// KeyID names the key that signed it (hex); set by Decode.
	KeyID string `json:"key_id,omitempty"`
}

// KeyID is the id of a public key: the hex of the first 4 bytes of its
// SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:4])
}

// marshal is the unsigned binary snapshot.
func marshal(s Snapshot, keyID []byte) ([]byte, error) {
	if len(s.Carts) == 0 || len(s.Carts) > MaxCarts {
		return nil, fmt.Errorf("%w: %d carts (1 to %d)", ErrMalformed, len(s.Carts), MaxCarts)
	}
	if len(s.Lines) > MaxLines {
		return nil, fmt.Errorf("%w: %d lines (at most %d)", ErrMalformed, len(s.Lines), MaxLines)
	}
	if s.Version < 0 || s.IssuedAt < 0 {
		return nil, fmt.Errorf("%w: negative version or time", ErrMalformed)
	}
	b := make([]byte, 0, 64+len(s.Carts)*16+len(s.Lines)*16)
	b = append(b, format)
	b = append(b, keyID...)
	b = binary.AppendUvarint(b, uint64(s.IssuedAt))
	b = binary.AppendUvarint(b, uint64(s.Version))
	b = append(b, byte(len(s.Carts)))
	for _, c := range s.Carts {
		raw, err := cartID.DecodeString(c)
		if err != nil || len(raw) != 16 {
			return nil, fmt.Errorf("%w: cart id %q", ErrMalformed, c)
		}
		b = append(b, raw...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Lines)))
	for _, l := range s.Lines {
		if err := events.ValidSKU(l.SKU); err != nil {
			return nil, fmt.Errorf("%w: sku %q: %v", ErrMalformed, l.SKU, err)
		}
		if l.Qty <= 0 || l.Qty > events.MaxDeltaQty {
			return nil, fmt.Errorf("%w: %s qty %d", ErrMalformed, l.SKU, l.Qty)
		}
		b = append(b, byte(len(l.SKU)))
		b = append(b, l.SKU...)
		b = binary.AppendUvarint(b, uint64(l.Qty))
		var price uint64
		if l.UnitPrice != nil {
			if *l.UnitPrice < 0 {
				return nil, fmt.Errorf("%w: %s price", ErrMalformed, l.SKU)
			}
			price = uint64(*l.UnitPrice) + 1
		}
		b = binary.AppendUvarint(b, price)
	}
	return b, nil
}

// Sign returns the code of s signed with key.
func Sign(key ed25519.PrivateKey, s Snapshot) (string, error) {
	pub := key.Public().(ed25519.PublicKey)
	id, _ := hex.DecodeString(KeyID(pub))
	b, err := marshal(s, id)
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(key, append([]byte(SignContext), b...))
	return Prefix + b32.EncodeToString(append(b, sig...)), nil
}

// IsCode reports whether text is meant as a cart code (it has the
// prefix), valid or not: such a scan is a cart's, never a product's.
func IsCode(text string) bool { return strings.HasPrefix(strings.TrimSpace(text), Prefix) }

// Decode reads a code without checking its signature; it returns the
// snapshot, the signed bytes and the signature.
func Decode(text string) (Snapshot, []byte, []byte, error) {
	text = strings.TrimSpace(text)
	body, ok := strings.CutPrefix(text, Prefix)
	if !ok {
		return Snapshot{}, nil, nil, ErrNotCartCode
	}
	if len(text) > MaxCodeLen {
		return Snapshot{}, nil, nil, fmt.Errorf("%w: %d characters", ErrMalformed, len(text))
	}
	raw, err := b32.DecodeString(body)
	if err == nil && b32.EncodeToString(raw) != body {
		// Base32's last character may carry unused bits: only the one
		// spelling the encoder makes is accepted, so a code has one text.
		err = errors.New("non-canonical base32")
	}
	if err != nil {
		return Snapshot{}, nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(raw) < 1+4+sigLen {
		return Snapshot{}, nil, nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	signed, sig := raw[:len(raw)-sigLen], raw[len(raw)-sigLen:]
	r := bytes.NewReader(signed)
	bad := func(what string) (Snapshot, []byte, []byte, error) {
		return Snapshot{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	if f, _ := r.ReadByte(); f != format {
		return bad(fmt.Sprintf("format %d", f))
	}
	var kid [4]byte
	if _, err := r.Read(kid[:]); err != nil {
		return bad("key id")
	}
	var s Snapshot
	s.KeyID = hex.EncodeToString(kid[:])
	issued, err := binary.ReadUvarint(r)
	if err != nil || issued > 1<<40 {
		return bad("issued at")
	}
	version, err := binary.ReadUvarint(r)
	if err != nil || version > 1<<53 {
		return bad("version")
	}
	s.IssuedAt, s.Version = int64(issued), int64(version)
	nc, err := r.ReadByte()
	if err != nil || nc == 0 || nc > MaxCarts {
		return bad("cart count")
	}
	for range nc {
		var id [16]byte
		if n, _ := r.Read(id[:]); n != 16 {
			return bad("cart id")
		}
		s.Carts = append(s.Carts, cartID.EncodeToString(id[:]))
	}
	nl, err := binary.ReadUvarint(r)
	if err != nil || nl > MaxLines {
		return bad("line count")
	}
	seen := map[string]bool{}
	for range nl {
		n, err := r.ReadByte()
		if err != nil || n == 0 || int(n) > events.MaxSKULen {
			return bad("sku length")
		}
		sku := make([]byte, n)
		if k, _ := r.Read(sku); k != int(n) {
			return bad("sku")
		}
		if events.ValidSKU(string(sku)) != nil || seen[string(sku)] {
			return bad("sku")
		}
		seen[string(sku)] = true
		qty, err := binary.ReadUvarint(r)
		if err != nil || qty == 0 || qty > events.MaxDeltaQty {
			return bad("qty")
		}
		price, err := binary.ReadUvarint(r)
		if err != nil || price > 1<<53 {
			return bad("price")
		}
		l := Line{SKU: string(sku), Qty: int64(qty)}
		if price > 0 {
			p := int64(price - 1)
			l.UnitPrice = &p
		}
		s.Lines = append(s.Lines, l)
	}
	if r.Len() != 0 {
		return bad("trailing bytes")
	}
	// Varints have longer spellings of the same number: only the shortest
	// is accepted, so one snapshot has one signed text.
	if again, err := marshal(s, kid[:]); err != nil || !bytes.Equal(again, signed) {
		return bad("not in canonical form")
	}
	return s, signed, sig, nil
}

// Keys are the public keys a side trusts, by KeyID.
type Keys map[string]ed25519.PublicKey

// Verify decodes text and checks its signature against keys, and its age
// against now (maxAge 0: no limit; a code issued more than a minute in
// the future is refused too).
func Verify(text string, keys Keys, now time.Time, maxAge time.Duration) (Snapshot, error) {
	s, signed, sig, err := Decode(text)
	if err != nil {
		return Snapshot{}, err
	}
	pub, ok := keys[s.KeyID]
	if !ok {
		return Snapshot{}, fmt.Errorf("%w: %s", ErrUnknownKey, s.KeyID)
	}
	if !ed25519.Verify(pub, append([]byte(SignContext), signed...), sig) {
		return Snapshot{}, ErrBadSignature
	}
	issued := time.Unix(s.IssuedAt, 0)
	if issued.After(now.Add(time.Minute)) || maxAge > 0 && now.Sub(issued) > maxAge {
		return Snapshot{}, fmt.Errorf("%w: issued %s", ErrExpired, issued.UTC().Format(time.RFC3339))
	}
	return s, nil
}
