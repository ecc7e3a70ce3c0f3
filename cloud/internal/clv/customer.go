package clv

import (
	"errors"
	"fmt"
	"math"
)

// Errors a fit returns; callers branch on them with errors.Is.
var (
	// ErrInvalidCustomer: a customer's history is impossible (negative
	// counts, a last purchase after the end, a spend that is not positive).
	// The error names the customer's index.
	ErrInvalidCustomer = errors.New("clv: invalid customer")
	// ErrNoCustomers: there is nobody to fit on.
	ErrNoCustomers = errors.New("clv: no customers")
	// ErrDegenerate: the data cannot identify the model, for example no
	// repeat purchases at all, or every customer spending the same.
	ErrDegenerate = errors.New("clv: data cannot identify the model")
	// ErrNoConvergence: the optimiser stopped before it found a maximum.
	ErrNoConvergence = errors.New("clv: fit did not converge")
)

// Customer is one customer's purchase history in the models' summary form,
// every time in the same unit (weeks, days) as the horizons asked about.
type Customer struct {
	// X is the number of repeat purchases: every purchase but the first.
	X int `json:"x"`
	// Tx is the time of the last repeat purchase, counted from the first
	// purchase; 0 when X is 0.
	Tx float64 `json:"t_x"`
	// T is the time from the first purchase to the end of observation.
	T float64 `json:"T"`
	// AvgSpend is the mean value of the repeat purchases; ignored when X is 0.
	AvgSpend float64 `json:"average_spend"`
}

// Validate reports what makes the purchase history impossible, wrapping
// ErrInvalidCustomer; the spend is checked only by the spend model.
func (c Customer) Validate() error {
	switch {
	case c.X < 0:
		return fmt.Errorf("%w: x %d is negative", ErrInvalidCustomer, c.X)
	case !finite(c.T) || c.T <= 0:
		return fmt.Errorf("%w: T %g is not a positive number", ErrInvalidCustomer, c.T)
	case !finite(c.Tx) || c.Tx < 0:
		return fmt.Errorf("%w: t_x %g is not a number >= 0", ErrInvalidCustomer, c.Tx)
	case c.Tx > c.T:
		return fmt.Errorf("%w: t_x %g is after T %g", ErrInvalidCustomer, c.Tx, c.T)
	case c.X == 0 && c.Tx != 0:
		return fmt.Errorf("%w: t_x %g with no repeat purchase (it must be 0)", ErrInvalidCustomer, c.Tx)
	}
	return nil
}

// validateSpend checks the part of c the spend model reads.
func (c Customer) validateSpend() error {
	if c.X > 0 && (!finite(c.AvgSpend) || c.AvgSpend <= 0) {
		return fmt.Errorf("%w: average spend %g of a repeat customer is not a positive number", ErrInvalidCustomer, c.AvgSpend)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// customerError names the customer an error is about.
func customerError(i int, err error) error { return fmt.Errorf("customer %d: %w", i, err) }
