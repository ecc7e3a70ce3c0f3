// Package ids mints the identifiers events and outboxes carry.
//
// Event ids are UUIDv7 strings: globally unique without coordination, and
// roughly time-ordered so that indexes on them stay append-mostly. Outbox
// epochs are numbers below 2^53 so that JavaScript POS apps can hold them
// exactly; a new one is minted whenever an outbox file is created, so a
// re-imaged device never reuses a (epoch, seq) pair.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// NewEventID returns a new UUIDv7 in its canonical 36-character form.
func NewEventID(now time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[6:]); err != nil {
		// crypto/rand never fails on supported platforms; a panic here is
		// better than a silently repeated id.
		panic("ids: crypto/rand failed: " + err.Error())
	}
	ms := uint64(now.UnixMilli())
	b[0] = byte(ms >> 40)
	b[1] = byte(ms >> 32)
	b[2] = byte(ms >> 24)
	b[3] = byte(ms >> 16)
	b[4] = byte(ms >> 8)
	b[5] = byte(ms)
	return FormatUUID(b, 7)
}

// FormatUUID stamps version (4 bits) and the RFC 9562 variant into b and
// returns it in the canonical 36-character form. Ids derived from other
// ids (a hash cut to 16 bytes, version 8) are formatted the same way.
func FormatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// NewEpoch returns a fresh outbox epoch: the creation time in milliseconds
// times 1000 plus a random part, so epochs of one device increase over time
// and two outboxes created in the same millisecond still differ.
func NewEpoch(now time.Time) uint64 {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	return uint64(now.UnixMilli())*1000 + uint64(binary.BigEndian.Uint16(b[:])%1000)
}

// ValidEventID reports whether s looks like an id this package minted (or any
// canonical UUID): hub and edge both reject events whose id is not one.
func ValidEventID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
