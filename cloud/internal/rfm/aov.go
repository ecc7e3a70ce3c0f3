package rfm

import (
	"maps"
	"sync"
)

// AOV is average order value: net revenue over orders, in minor units.
type AOV struct {
	Revenue int64 `json:"revenue"`
	Orders  int64 `json:"orders"`
}

// Add counts a sale: a purchase adds an order and its amount, a refund
// takes its amount off the revenue.
func (a AOV) Add(s Sale) AOV {
	if s.Refund {
		a.Revenue -= s.Amount
	} else {
		a.Revenue += s.Amount
		a.Orders++
	}
	return a
}

// Value is Revenue / Orders, 0 without orders.
func (a AOV) Value() float64 {
	if a.Orders == 0 {
		return 0
	}
	return float64(a.Revenue) / float64(a.Orders)
}

// AOVBook keeps AOV overall, by store and by channel as sales arrive (AOV
// by segment comes from Book.Summary). Like Book, it is order-independent
// and not idempotent, and safe for concurrent use.
type AOVBook struct {
	mu        sync.Mutex
	total     AOV
	byStore   map[string]AOV
	byChannel map[string]AOV
}

// NewAOVBook returns an empty AOVBook.
func NewAOVBook() *AOVBook {
	return &AOVBook{byStore: map[string]AOV{}, byChannel: map[string]AOV{}}
}

// Add counts a sale.
func (a *AOVBook) Add(s Sale) error {
	if err := s.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total = a.total.Add(s)
	a.byStore[s.Store] = a.byStore[s.Store].Add(s)
	a.byChannel[s.Channel] = a.byChannel[s.Channel].Add(s)
	return nil
}

// Total is AOV over every sale.
func (a *AOVBook) Total() AOV {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// ByStore is AOV per store (a copy).
func (a *AOVBook) ByStore() map[string]AOV {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.byStore)
}

// ByChannel is AOV per channel (a copy).
func (a *AOVBook) ByChannel() map[string]AOV {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.byChannel)
}
