package clv

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Model joins the purchase and spend models to value customers.
type Model struct {
	Purchases BGNBD      `json:"purchases"`
	Spend     GammaGamma `json:"spend"`
}

// Fit is both fits of one data set.
type Fit struct {
	Purchases BGNBDFit      `json:"purchases"`
	Spend     GammaGammaFit `json:"spend"`
}

// Model returns the fitted models.
func (f Fit) Model() Model { return Model{Purchases: f.Purchases.BGNBD, Spend: f.Spend.GammaGamma} }

// FitModel fits the BG/NBD and the Gamma-Gamma models to the same
// customers, one after the other, with the errors of FitBGNBD and
// FitGammaGamma (the error says which model failed).
func FitModel(ctx context.Context, customers []Customer, opts ...Option) (Fit, error) {
	p, err := FitBGNBD(ctx, customers, opts...)
	if err != nil {
		return Fit{Purchases: p}, fmt.Errorf("BG/NBD: %w", err)
	}
	s, err := FitGammaGamma(ctx, customers, opts...)
	if err != nil {
		return Fit{Purchases: p, Spend: s}, fmt.Errorf("Gamma-Gamma: %w", err)
	}
	return Fit{Purchases: p, Spend: s}, nil
}

// Horizon says how far ahead CLV looks and how it discounts.
type Horizon struct {
	// Periods is how many periods to add up (for example 12).
	Periods int `json:"periods"`
	// PeriodLength is a period in the models' time unit (for example
	// 4.345 for a month in weeks).
	PeriodLength float64 `json:"period_length"`
	// DiscountRate is the rate per period (for example 0.01 a month); 0
	// does not discount.
	DiscountRate float64 `json:"discount_rate"`
	// Margin is the share of spend that is profit; 0 means 1 (revenue).
	Margin float64 `json:"margin"`
}

// ErrInvalidHorizon is returned by CLV for a horizon that means nothing.
var ErrInvalidHorizon = errors.New("clv: invalid horizon")

// Validate reports what is wrong with h, wrapping ErrInvalidHorizon.
func (h Horizon) Validate() error {
	switch {
	case h.Periods < 1 || h.Periods > 10000:
		return fmt.Errorf("%w: periods %d not in 1..10000", ErrInvalidHorizon, h.Periods)
	case !finite(h.PeriodLength) || h.PeriodLength <= 0:
		return fmt.Errorf("%w: period length %g is not positive", ErrInvalidHorizon, h.PeriodLength)
	case !finite(h.DiscountRate) || h.DiscountRate < 0:
		return fmt.Errorf("%w: discount rate %g is negative", ErrInvalidHorizon, h.DiscountRate)
	case !finite(h.Margin) || h.Margin < 0 || h.Margin > 1:
		return fmt.Errorf("%w: margin %g not in 0..1", ErrInvalidHorizon, h.Margin)
	}
	return nil
}

// CLV is the customer's lifetime value over h: the purchases expected in
// each period, valued at the expected average spend times the margin and
// discounted to today as if they fell at the period's end:
//
//	CLV = m · E[Z] · Σ_{k=1..K} (E[Y(kL)] − E[Y((k−1)L)]) / (1+d)^k
//
// It fails only for an invalid customer or horizon.
func (m Model) CLV(c Customer, h Horizon) (float64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if err := c.validateSpend(); err != nil {
		return 0, err
	}
	if err := h.Validate(); err != nil {
		return 0, err
	}
	margin := h.Margin
	if margin == 0 {
		margin = 1
	}
	var sum, prev float64
	disc := 1.0
	for k := 1; k <= h.Periods; k++ {
		cum := m.Purchases.ExpectedPurchases(float64(k)*h.PeriodLength, c)
		disc /= 1 + h.DiscountRate
		sum += (cum - prev) * disc
		prev = cum
	}
	v := margin * m.Spend.ExpectedAvgSpend(c) * sum
	if math.IsNaN(v) {
		return 0, fmt.Errorf("%w: the models give no value for this customer", ErrDegenerate)
	}
	return v, nil
}
