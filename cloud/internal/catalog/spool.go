package catalog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Spool keeps the variants of one import, with their lines, in a temporary
// file: an upload can then be read and checked whole before anything is
// stored, and stored afterwards in chunks, without the catalog ever being
// in memory. Writing costs a buffer; reading, one variant at a time.
//
// Add every variant first, then call Each as many times as needed (a
// retried transaction reads them again); Close removes the file. The file
// is unlinked as soon as it is created where the system allows it, so a
// crash leaves nothing behind. Not safe for concurrent use.
type Spool struct {
	f       *os.File
	path    string // set while the file still has a name to remove
	w       *bufio.Writer
	n       int
	size    int64
	reading bool
	buf     []byte
}

// maxSpooledString bounds a string read back from a spool: far above any
// field Validate accepts, so only a damaged file reaches it.
const maxSpooledString = 1 << 20

// NewSpool creates an empty spool in dir (created if missing; "" is the
// system's temporary directory).
func NewSpool(dir string) (*Spool, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("catalog: spool: %w", err)
		}
	}
	f, err := os.CreateTemp(dir, "catalog-import-*.spool")
	if err != nil {
		return nil, fmt.Errorf("catalog: spool: %w", err)
	}
	s := &Spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	if os.Remove(f.Name()) != nil {
		s.path = f.Name() // removed by Close instead
	}
	return s, nil
}

// Add appends a variant and the line it came from. Its signature fits
// ParseLines's callback.
func (s *Spool) Add(v Variant, line int) error {
	if s.reading {
		return errors.New("catalog: spool: Add after Each")
	}
	b := s.buf[:0]
	b = binary.AppendUvarint(b, uint64(max(line, 0)))
	b = binary.AppendVarint(b, v.PriceMinor)
	for _, f := range [...]string{v.SKU, v.ProductID, v.Name, v.Brand, v.Size, v.Colour, v.Currency, v.ImageURL, v.Category} {
		b = appendString(b, f)
	}
	b = binary.AppendUvarint(b, uint64(len(v.GTINs)))
	for _, g := range v.GTINs {
		b = appendString(b, g)
	}
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("catalog: spool: %w", err)
	}
	s.n++
	s.size += int64(len(b))
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Len is the number of variants added.
func (s *Spool) Len() int { return s.n }

// Size is the bytes the spool takes on disk.
func (s *Spool) Size() int64 { return s.size }

// Each hands every variant to each, in the order added, and stops at the
// first error each returns, returning it.
func (s *Spool) Each(each func(v Variant, line int) error) error {
	if !s.reading {
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("catalog: spool: %w", err)
		}
		s.reading = true
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("catalog: spool: %w", err)
	}
	r := bufio.NewReaderSize(io.LimitReader(s.f, s.size), 256<<10)
	for i := 0; i < s.n; i++ {
		v, line, err := s.read(r)
		if err != nil {
			return fmt.Errorf("catalog: spool: variant %d of %d: %w", i+1, s.n, err)
		}
		if err := each(v, line); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) read(r *bufio.Reader) (Variant, int, error) {
	var v Variant
	line, err := binary.ReadUvarint(r)
	if err != nil {
		return v, 0, noEOF(err)
	}
	if v.PriceMinor, err = binary.ReadVarint(r); err != nil {
		return v, 0, noEOF(err)
	}
	for _, f := range [...]*string{&v.SKU, &v.ProductID, &v.Name, &v.Brand, &v.Size, &v.Colour, &v.Currency, &v.ImageURL, &v.Category} {
		if *f, err = s.readString(r); err != nil {
			return v, 0, err
		}
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return v, 0, noEOF(err)
	}
	if n > maxSpooledString {
		return v, 0, fmt.Errorf("%d GTINs: damaged file", n)
	}
	v.GTINs = make([]string, n)
	for i := range v.GTINs {
		if v.GTINs[i], err = s.readString(r); err != nil {
			return v, 0, err
		}
	}
	return v, int(line), nil
}

func (s *Spool) readString(r *bufio.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", noEOF(err)
	}
	if n > maxSpooledString {
		return "", fmt.Errorf("a %d-byte field: damaged file", n)
	}
	if uint64(cap(s.buf)) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return "", noEOF(err)
	}
	return string(b), nil
}

// noEOF turns the end of the file inside a variant into an error that
// says so.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Close removes the spool's file.
func (s *Spool) Close() error {
	err := s.f.Close()
	if s.path != "" {
		err = errors.Join(err, os.Remove(s.path))
	}
	return err
}
