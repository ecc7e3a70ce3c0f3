package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// copyBuf builds the rows of a PostgreSQL COPY in binary form: formatting
// them here costs the hub less than the driver's boxed binary values (and
// less than the text form, whose every value is scanned for bytes to
// escape), and the server loads them without the parsing, sorting and
// conflict checks of an INSERT ... SELECT FROM unnest(...), nor the text
// form's line splitting and unescaping. Columns are added in the order
// the COPY names them, each of the type its column has; end closes each
// row.
type copyBuf struct {
	b    []byte
	rows int
	// at is where the current row's field count goes; n counts them.
	at int
	n  uint16
}

// newCopyBuf starts a COPY's rows in buf's storage.
func newCopyBuf(buf []byte) *copyBuf {
	return &copyBuf{b: append(buf[:0], pgCopyBinaryHeader...)}
}

func (c *copyBuf) field() {
	if c.n == 0 {
		c.at = len(c.b)
		c.b = append(c.b, 0, 0)
	}
	c.n++
}

// text writes a text value, as it is: the binary form escapes nothing.
func (c *copyBuf) text(s string) *copyBuf {
	c.field()
	c.b = appendCopyBinaryText(c.b, s)
	return c
}

// int writes a bigint.
func (c *copyBuf) int(v int64) *copyBuf {
	c.field()
	c.b = appendCopyInt8(c.b, v)
	return c
}

// bytes writes a bytea.
func (c *copyBuf) bytes(v []byte) *copyBuf {
	c.field()
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(v)))
	c.b = append(c.b, v...)
	return c
}

func (c *copyBuf) end() {
	binary.BigEndian.PutUint16(c.b[c.at:], c.n)
	c.rows++
	c.n = 0
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
		data := binary.BigEndian.AppendUint16(c.b, 0xffff) // the trailer: -1 fields
		tag, err := pc.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), "COPY "+into+" FROM STDIN (FORMAT binary)")
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
