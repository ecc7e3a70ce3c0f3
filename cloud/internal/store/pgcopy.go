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
	for i := 0; i < len(s); i++ {
		if k := s[i]; k == '\\' || k == '\t' || k == '\n' || k == '\r' {
			c.b = appendCopyText(c.b, s)
			return c
		}
	}
	// Nothing to escape (digests, ids): one copy.
	c.b = append(c.b, s...)
	return c
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
