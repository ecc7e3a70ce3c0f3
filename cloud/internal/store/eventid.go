package store

import (
	"fmt"
	"strconv"
	"strings"
)

// The ledger keys event ids as two integers, the high and low 64 bits of
// the UUID, each with its sign bit flipped so that SQL's signed order is
// the ids' (lowercase hexadecimal) order: a key of integers is smaller,
// quicker to compare and to bind than 36 characters of text, on every
// line of the sales history. The hub reads event ids in lowercase (ingest
// folds them), so this order is also events.Stamp's.

const signBit = uint64(1) << 63

// eventIDKey returns the ledger key of an event id: a UUID, canonical or
// not, in either case.
func eventIDKey(id string) (hi, lo int64, err error) {
	var v [2]uint64
	n := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		case c == '-':
			continue
		default:
			return 0, 0, fmt.Errorf("event id %q is not a UUID", id)
		}
		if n == 32 {
			return 0, 0, fmt.Errorf("event id %q is not a UUID", id)
		}
		v[n/16] = v[n/16]<<4 | d
		n++
	}
	if n != 32 {
		return 0, 0, fmt.Errorf("event id %q is not a UUID", id)
	}
	return int64(v[0] ^ signBit), int64(v[1] ^ signBit), nil
}

// eventIDString is the canonical (lowercase) id of a ledger key.
func eventIDString(hi, lo int64) string {
	h := strconv.FormatUint(uint64(hi)^signBit, 16)
	l := strconv.FormatUint(uint64(lo)^signBit, 16)
	s := strings.Repeat("0", 16-len(h)) + h + strings.Repeat("0", 16-len(l)) + l
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// eventIDKeySQL is the SQL computing the key half (0: high, 1: low) of
// the text event id column col, for the migration that moved the ledger
// to integer keys: each of the 16 hexadecimal digits by its position in
// '0123456789abcdef', the first one less 8 (the flipped sign bit), so the
// sum never leaves the range of a 64-bit integer on either database.
func eventIDKeySQL(col string, half int) string {
	var b strings.Builder
	h := "lower(replace(" + col + ", '-', ''))"
	for i := 0; i < 16; i++ {
		if i > 0 {
			b.WriteString(" + ")
		}
		digit := "(CAST({{instr}}('0123456789abcdef', substr(" + h + ", " + strconv.Itoa(half*16+i+1) + ", 1)) AS BIGINT) - 1)"
		if i == 0 {
			digit = "(" + digit + " - 8)"
		}
		b.WriteString(digit + " * " + strconv.FormatUint(uint64(1)<<(4*(15-i)), 10))
	}
	return b.String()
}
