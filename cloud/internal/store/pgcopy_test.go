package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// Ensure that copyBuf's binary rows load into PostgreSQL as they were
// written, whatever bytes their text holds (the text form's escapes:
// backslash, tab, newline, carriage return; other control bytes; UTF-8),
// that a duplicate key is errCopyDuplicate, and that text which is not
// UTF-8 is refused, not stored.
func TestCopyBufRoundTrip(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE copy_rt (k TEXT PRIMARY KEY, n BIGINT NOT NULL, b BYTEA NOT NULL, e TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	type row struct {
		k string
		n int64
		b []byte
		e string
	}
	rows := []row{
		{"plain", 1, []byte{0, 1, 2, 0xff}, ""},
		{"back\\slash\ttab\nnew\rret", -1 << 63, []byte{}, "zoë@shop.test"},
		{"\x01\x7f ~{}", 1<<63 - 1, bytes.Repeat([]byte{'\\'}, 40), "\\N"},
		{"v1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0, []byte("x"), "名前"},
	}
	c := newCopyBuf(nil)
	for _, r := range rows {
		c.text(r.k).int(r.n).bytes(r.b).text(r.e).end()
	}
	if err := copyRows(ctx, conn, "copy_rt (k, n, b, e)", c); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		var got row
		if err := conn.QueryRowContext(ctx, `SELECT k, n, b, e FROM copy_rt WHERE k = $1`, r.k).Scan(&got.k, &got.n, &got.b, &got.e); err != nil {
			t.Fatalf("%q: %v", r.k, err)
		}
		if got.k != r.k || got.n != r.n || !bytes.Equal(got.b, r.b) || got.e != r.e {
			t.Errorf("read %+v, wrote %+v", got, r)
		}
	}
	// The buffer is reused, as the identity COPYs reuse theirs.
	c = newCopyBuf(c.b)
	c.text("plain").int(2).bytes(nil).text("").end()
	if err := copyRows(ctx, conn, "copy_rt (k, n, b, e)", c); !errors.Is(err, errCopyDuplicate) {
		t.Fatalf("duplicate key: %v", err)
	}
	c = newCopyBuf(c.b)
	c.text("bad\xffutf8").int(3).bytes(nil).text("").end()
	if err := copyRows(ctx, conn, "copy_rt (k, n, b, e)", c); err == nil {
		t.Fatal("text that is not UTF-8 was copied")
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM copy_rt`).Scan(&n); err != nil || n != len(rows) {
		t.Fatalf("%d rows (%v), want %d", n, err, len(rows))
	}
}
