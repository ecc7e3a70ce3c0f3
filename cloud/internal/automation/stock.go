package automation

// StockWatch tells when a stock position comes back in stock: its
// available quantity rises above zero after it was seen at or below zero.
// It remembers only the positions it saw out of stock, so it stays small;
// a position first seen in stock (after a restart) starts no trigger.
// Not safe for concurrent use.
type StockWatch struct {
	out map[[2]string]bool
}

// NewStockWatch returns an empty watch.
func NewStockWatch() *StockWatch { return &StockWatch{out: map[[2]string]bool{}} }

// Observe records a position's available quantity and reports whether it
// just came back in stock.
func (w *StockWatch) Observe(sku, location string, available int64) bool {
	k := [2]string{sku, location}
	if available <= 0 {
		w.out[k] = true
		return false
	}
	if w.out[k] {
		delete(w.out, k)
		return true
	}
	return false
}

// OutOfStock is how many positions the watch holds as out of stock.
func (w *StockWatch) OutOfStock() int { return len(w.out) }
