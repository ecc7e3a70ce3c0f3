package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strings"
	"sync"
)

// digestFilter is a replica's record of the identifier digests the hub
// may hold a cust_identifiers row of, so that a batch of shoppers new to
// the hub is not probed for, one index lookup per identifier (at millions
// of identifiers, the larger part of the load of a batch's graph): a
// Bloom filter over the first 8 bytes of every digest, which can say
// "absent" for sure and "present" by mistake (1% or so), so a digest it
// calls present is probed as before.
//
// It is kept right across replicas by the digest log (cust_digest_log):
// every batch that adds identifier rows logs their prefixes under the
// next generation, under the customers' lock, and every replica reads
// the generations it has not seen before it trusts its filter, under the
// same lock; so it holds every digest committed before the batch that
// asks. A replica that starts, or finds a generation it needs pruned
// from the log, builds its filter: it notes the log's last generation,
// then reads the identifiers' digests a slice per batch in key order,
// while the log brings what is added meanwhile, and asks nothing of the
// filter until the read is done. A filter past the count it was sized
// for is rebuilt bigger the same way, answering meanwhile (too full, it
// only calls present more often by mistake).
//
// Only the PostgreSQL copy path trusts it (applyObservations): there a
// digest wrongly called absent would make its row's COPY fail on the
// primary key, and the batch is applied again without the filter. A
// mistake can cost a retry, never a wrong graph.
type digestFilter struct {
	mu sync.Mutex
	// cur answers (nil until a first build is done); next is being built
	// (nil when none is). A filter past the count it was sized for only
	// calls present more often by mistake: cur answers until next, sized
	// for the hub as it is now, replaces it.
	cur, next *bloom
	// gen is the last log generation read; both filters hold everything
	// logged up to it (next, with what its scan has still to read).
	gen int64
	// logged is set once gen was read from the log.
	logged bool
	// cursor is the last digest next's scan read.
	cursor string
}

// bloom is one Bloom filter over digests' first 8 bytes.
type bloom struct {
	bits []uint64
	// n counts the digests added from the scan and the log, capacity what
	// the bits were sized for.
	n, capacity int
}

const (
	// filterHashes is the Bloom filter's number of hashes, and
	// filterBitsPerDigest its size: together about 1% false "present".
	filterHashes        = 7
	filterBitsPerDigest = 10
	// filterScanRows is how many digests a rebuild reads per batch.
	filterScanRows = 200_000
	// digestLogKeepMS is how long a log generation is kept: a replica idle
	// for longer rebuilds its filter.
	digestLogKeepMS = 3600_000
)

// digestPrefix returns the first 8 bytes of digest d ("v1:<hex>"); false
// for anything else, which the filter never calls absent.
func digestPrefix(d string) (uint64, bool) {
	_, h, ok := strings.Cut(d, ":")
	if !ok || len(h) < 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(h[:16])); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:]), true
}

// positions calls f with the bit positions of prefix p in m bits (a power
// of two): double hashing, the second hash mixed from the first (a
// digest's bytes are a keyed hash, uniform already).
func positions(p uint64, m uint64, f func(uint64) bool) bool {
	h2 := p * 0x9e3779b97f4a7c15
	h2 ^= h2 >> 31
	h2 |= 1
	for i := uint64(0); i < filterHashes; i++ {
		if !f((p + i*h2) & (m - 1)) {
			return false
		}
	}
	return true
}

func newBloom(capacity int) *bloom {
	m := uint64(1) << bits.Len64(uint64(capacity*filterBitsPerDigest)-1)
	return &bloom{bits: make([]uint64, m/64), capacity: capacity}
}

func (b *bloom) add(p uint64) {
	m := uint64(len(b.bits)) * 64
	positions(p, m, func(i uint64) bool {
		b.bits[i/64] |= 1 << (i % 64)
		return true
	})
	b.n++
}

// absent reports whether digest d is surely not among those added.
func (b *bloom) absent(d string) bool {
	p, ok := digestPrefix(d)
	if !ok {
		return false
	}
	m := uint64(len(b.bits)) * 64
	return !positions(p, m, func(i uint64) bool { return b.bits[i/64]&(1<<(i%64)) != 0 })
}

// add adds prefix p to both filters. Call with f.mu.
func (f *digestFilter) add(p uint64) {
	if f.cur != nil {
		f.cur.add(p)
	}
	if f.next != nil {
		f.next.add(p)
	}
}

// digestsAbsent brings the filter up to date (tx holds the customers'
// lock) and returns, when it can be trusted, which of digests the hub
// surely holds no row of; nil until a first build is done.
func (s *Store) digestsAbsent(ctx context.Context, tx dbq, digests []string) (map[string]bool, error) {
	f := &s.custDigests
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := s.readDigestLog(ctx, tx); err != nil {
		return nil, err
	}
	if f.next == nil && (f.cur == nil || f.cur.n > f.cur.capacity) {
		if err := s.startFilter(ctx, tx); err != nil {
			return nil, err
		}
	}
	if f.next != nil {
		if err := s.scanDigests(ctx, tx); err != nil {
			return nil, err
		}
	}
	if f.cur == nil {
		return nil, nil
	}
	out := map[string]bool{}
	for _, d := range digests {
		if f.cur.absent(d) {
			out[d] = true
		}
	}
	return out, nil
}

// startFilter starts building a filter sized for three times the
// identifiers the hub holds (the planner's density times the table's
// size now), and at least twice what the current one holds. Call with
// f.mu, the log read.
func (s *Store) startFilter(ctx context.Context, tx dbq) error {
	f := &s.custDigests
	var tuples, pages, size float64
	err := tx.QueryRowContext(ctx, `SELECT GREATEST(reltuples, 0), relpages, pg_relation_size(oid) FROM pg_class WHERE oid = 'cust_identifiers'::regclass`).Scan(&tuples, &pages, &size)
	if err != nil {
		return fmt.Errorf("digest filter: size: %w", err)
	}
	density := 30.0 // rows a page, before the table was ever analysed
	if pages > 0 && tuples > 0 {
		density = tuples / pages
	}
	capacity := max(3*int(density*size/8192), 1<<20)
	if f.cur != nil {
		capacity = max(capacity, 2*f.cur.n)
	}
	if !f.logged {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(gen), 0) FROM cust_digest_log`).Scan(&f.gen); err != nil {
			return fmt.Errorf("digest filter: log: %w", err)
		}
		f.logged = true
	}
	f.next, f.cursor = newBloom(capacity), ""
	return nil
}

// readDigestLog adds the generations logged since the last read. A
// generation missing (pruned before this replica read it) drops both
// filters: the next batch starts again. Call with f.mu.
func (s *Store) readDigestLog(ctx context.Context, tx dbq) error {
	f := &s.custDigests
	if !f.logged {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT gen, digests FROM cust_digest_log WHERE gen > $1 ORDER BY gen`, f.gen)
	if err != nil {
		return fmt.Errorf("digest filter: log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			gen int64
			b   []byte
		)
		if err := rows.Scan(&gen, &b); err != nil {
			return fmt.Errorf("digest filter: log: %w", err)
		}
		if gen != f.gen+1 {
			f.cur, f.next, f.logged = nil, nil, false
			return rows.Close()
		}
		for i := 0; i+8 <= len(b); i += 8 {
			f.add(binary.BigEndian.Uint64(b[i:]))
		}
		f.gen = gen
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("digest filter: log: %w", err)
	}
	return nil
}

// scanDigests reads the next slice of the identifiers' digests into the
// filter being built, which answers once the scan is done. Call with
// f.mu.
func (s *Store) scanDigests(ctx context.Context, tx dbq) error {
	f := &s.custDigests
	rows, err := tx.QueryContext(ctx, `SELECT digest FROM cust_identifiers WHERE `+s.d.identKey("digest")+` > `+s.d.identKey("$1")+` ORDER BY `+s.d.identKey("digest")+` LIMIT `+fmt.Sprint(filterScanRows), f.cursor)
	if err != nil {
		return fmt.Errorf("digest filter: scan: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return fmt.Errorf("digest filter: scan: %w", err)
		}
		n++
		f.cursor = d
		if p, ok := digestPrefix(d); ok {
			f.next.add(p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("digest filter: scan: %w", err)
	}
	if n < filterScanRows {
		f.cur, f.next = f.next, nil
	}
	return nil
}

// logDigests logs digests, rows the batch adds to cust_identifiers, under
// the next generation (tx holds the customers' lock), and adds them to
// this replica's filter at once: should tx roll back, the filter only
// holds a few digests too many. Generations older than digestLogKeepMS
// are pruned now and then.
func (s *Store) logDigests(ctx context.Context, tx dbq, digests []string, nowMS int64) error {
	if len(digests) == 0 {
		return nil
	}
	b := make([]byte, 0, 8*len(digests))
	f := &s.custDigests
	// Added here and again when the next batch reads the log: the
	// counts run a little high, which only brings a rebuild closer.
	f.mu.Lock()
	for _, d := range digests {
		if p, ok := digestPrefix(d); ok {
			b = binary.BigEndian.AppendUint64(b, p)
			f.add(p)
		}
	}
	f.mu.Unlock()
	var gen int64
	err := tx.QueryRowContext(ctx, `INSERT INTO cust_digest_log (gen, at_ms, digests) SELECT COALESCE(MAX(gen), 0) + 1, $1, $2 FROM cust_digest_log RETURNING gen`, nowMS, b).Scan(&gen)
	if err != nil {
		return fmt.Errorf("digest log: %w", err)
	}
	if gen%64 == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM cust_digest_log WHERE at_ms < $1 AND gen < $2`, nowMS-digestLogKeepMS, gen); err != nil {
			return fmt.Errorf("digest log: prune: %w", err)
		}
	}
	return nil
}
