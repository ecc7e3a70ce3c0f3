package rfm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// millionCustomers is a book of 1,000,000 customers who bought over two
// years: most once or twice, a few often.
func millionCustomers(b *testing.B) (*Book, []string) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	ids := make([]string, 1_000_000)
	cs := make([]Customer, len(ids))
	for i := range cs {
		ids[i] = fmt.Sprintf("CUST-%08d", i)
		orders := int64(1 + rng.ExpFloat64()*2)
		cs[i] = Customer{
			ID:     ids[i],
			Last:   day0.Add(-time.Duration(rng.Int64N(int64(2 * 365 * 24 * time.Hour)))),
			Orders: orders,
			Spend:  orders * int64(1000+rng.IntN(20000)),
		}
	}
	book := NewBook()
	if err := book.Restore(cs); err != nil {
		b.Fatal(err)
	}
	return book, ids
}

// BenchmarkSaleThenScore1M is the refresh after a sale at 1,000,000
// customers: add one sale of a random customer, then read that customer's
// scores and segment. ns/op is the whole refresh.
//
//	go test -run '^$' -bench 'SaleThenScore1M|Summary1M|Restore1M' ./cloud/internal/rfm/
func BenchmarkSaleThenScore1M(b *testing.B) {
	book, ids := millionCustomers(b)
	rng := rand.New(rand.NewPCG(2, 2))
	at := day0
	for b.Loop() {
		id := ids[rng.IntN(len(ids))]
		at = at.Add(time.Second)
		if err := book.Add(Sale{Customer: id, At: at, Amount: int64(500 + rng.IntN(10000))}); err != nil {
			b.Fatal(err)
		}
		if _, _, ok := book.Score(id); !ok {
			b.Fatal("not scored")
		}
	}
}

// BenchmarkSummary1M is the size, orders, revenue and AOV of every segment
// at 1,000,000 customers: one pass over all of them.
func BenchmarkSummary1M(b *testing.B) {
	book, _ := millionCustomers(b)
	for b.Loop() {
		book.Summary()
	}
}

// BenchmarkRestore1M loads 1,000,000 customers into a book, as a hub does
// at start.
func BenchmarkRestore1M(b *testing.B) {
	book, ids := millionCustomers(b)
	cs := make([]Customer, 0, len(ids))
	for _, id := range ids {
		c, _ := book.Customer(id)
		cs = append(cs, c)
	}
	for b.Loop() {
		if err := NewBook().Restore(cs); err != nil {
			b.Fatal(err)
		}
	}
}
