package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// copyBuf builds the rows of a PostgreSQL COPY in text form: formatting
// them here costs the hub less than the driver's boxed binary values, and
// the server loads them without the parsing, sorting and conflict checks
// of an INSERT ... SELECT FROM unnest(...). Columns are added in the
// order the COPY names them; end closes each row.
type copyBuf struct {
	b    []byte
	rows int
	col  int
}

func (c *copyBuf) sep() {
	if c.col > 0 {
		c.b = append(c.b, '\t')
	}
	c.col++
}

func (c *copyBuf) text(s string) *copyBuf {
	c.sep()
	if mayNeedCopyEscape(s) {
		c.b = appendCopyText(c.b, s)
		return c
	}
	// Nothing to escape (digests, ids): one copy.
	c.b = append(c.b, s...)
	return c
}

// mayNeedCopyEscape reports whether s may hold a byte COPY's text form
// escapes (backslash, tab, newline, carriage return): true for every s
// that does, and for some that hold another control byte (appendCopyText
// copies those as they are). It reads eight bytes at a time: the rows of
// an identify batch are mostly digests and ids, and a byte-by-byte test
// of each was the larger part of formatting them.
func mayNeedCopyEscape(s string) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x0e (tab, newline and carriage return are), or
		// a byte equal to a backslash (its xor is zero).
		y := x ^ (0x5c * ones)
		if (x-0x0e*ones)&^x&highs != 0 || (y-ones)&^y&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if k := s[i]; k == '\\' || k == '\t' || k == '\n' || k == '\r' {
			return true
		}
	}
	return false
}

func (c *copyBuf) int(v int64) *copyBuf {
	c.sep()
	c.b = strconv.AppendInt(c.b, v, 10)
	return c
}

// bytes writes a bytea in hex form; its backslash is escaped as COPY's
// text form wants.
func (c *copyBuf) bytes(v []byte) *copyBuf {
	c.sep()
	c.b = append(c.b, '\\', '\\', 'x')
	c.b = hex.AppendEncode(c.b, v)
	return c
}

func (c *copyBuf) end() {
	c.b = append(c.b, '\n')
	c.rows++
	c.col = 0
}

// errCopyDuplicate reports that a copied row's key was already there: the
// COPY failed, and with it the transaction (or its savepoint).
var errCopyDuplicate = errors.New("store: a copied row is already there")

// copyRows copies c's rows into "table (cols)" over conn, whose
// transaction is open. A duplicate key is errCopyDuplicate.
func copyRows(ctx context.Context, conn *sql.Conn, into string, c *copyBuf) error {
	if c.rows == 0 {
		return nil
	}
	err := conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		tag, err := pc.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(c.b), "COPY "+into+" FROM STDIN")
		if err == nil && tag.RowsAffected() != int64(c.rows) {
			err = fmt.Errorf("copied %d of %d rows", tag.RowsAffected(), c.rows)
		}
		return err
	})
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("copy %s: %w", into, errCopyDuplicate)
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", into, err)
	}
	return nil
}

// pgCopyBinaryHeader opens a COPY in binary form: the signature, no flags,
// no header extension.
const pgCopyBinaryHeader = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// appendCopyInt8 appends a bigint field of a binary COPY row: its length
// (8) and its value, big-endian.
func appendCopyInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// appendCopyBinaryText appends a text field of a binary COPY row: its
// length and its bytes (UTF-8, the server's encoding), unescaped.
func appendCopyBinaryText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
