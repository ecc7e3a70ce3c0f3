// Package clv values customers: how many purchases each will make
// (BG/NBD, Fader, Hardie & Lee 2005, "Counting Your Customers" the Easy
// Way), how much each spends on average (Gamma-Gamma, Fader, Hardie & Lee
// 2005, RFM and CLV: Using Iso-Value Curves), and so what each is worth
// (CLV). It fits both models by maximum likelihood and predicts from them;
// it is pure (no I/O, no clock, no package state), so the hub can refit in
// the background, on a copy of the data, without holding anything that
// applying events needs.
//
// # Data
//
// A Customer is the summary the models take, in one time unit of the
// caller's choosing (weeks, days) used for every field and every horizon:
// X repeat purchases (the first purchase is not counted), Tx the time of the
// last repeat purchase since the first purchase (0 when X is 0), T the time
// since the first purchase, and AvgSpend the mean value of the repeat
// purchases (ignored when X is 0).
//
// # Fitting
//
// FitBGNBD and FitGammaGamma maximise the log-likelihood with gonum's BFGS
// on the logarithms of the parameters, so every trial point is a valid
// model, and with analytic gradients. The likelihood is computed in log
// space throughout: the BG/NBD term that overflows in a direct evaluation
// (the "#NUM!" problem of Fader & Hardie's spreadsheet, their note 027) is
// a log-sum-exp here. The start point comes from the data (the repeat
// purchase rate sets α, the mean spend sets γ); a run that stops without
// converging is retried once from a neutral start. A fit reports its
// parameters, log-likelihood and diagnostics, and fails with ErrDegenerate
// when the data cannot identify the model (no repeat purchases, one spend
// value for everyone, a parameter running to zero or infinity) and with
// ErrNoConvergence when the optimiser gives up. Both fits stop at the next
// likelihood evaluation once their context is cancelled, and run the
// likelihood over fixed blocks of customers on WithWorkers goroutines
// (default 1, so a background refit takes one core), summed in block order
// so the result does not depend on the number of workers. The BG/NBD
// likelihood runs over distinct histories (x, tₓ, T), each weighted by how
// many customers share it: with times in whole days, as a store's data is,
// a million customers are a few hundred thousand histories.
//
// # Predictions
//
// For a customer (x, tₓ, T) and BG/NBD parameters (r, α, a, b):
//
//	P(alive) = 1 / (1 + [x>0] · a/(b+x−1) · ((α+T)/(α+tₓ))^(r+x))
//
//	E[Y(t) | x, tₓ, T] = P(alive) · (a+b+x−1)/(a−1)
//	    · (1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t)))
//
// (Fader, Hardie & Lee 2005, and their 2008 note on P(alive)). The
// Gamma-Gamma expected average spend of a customer with x repeat purchases
// averaging z̄ is
//
//	E[Z | x, z̄] = p(γ + x·z̄) / (px + q − 1)
//
// a weighted mean of the population mean pγ/(q−1) and the customer's own z̄.
//
// # CLV
//
// Customer lifetime value is the discounted margin of the purchases
// expected over a horizon cut into periods of length L (in the model's
// time unit), with a discount rate d per period and a margin m (the share
// of spend that is profit; 1 values revenue):
//
//	CLV = m · E[Z] · Σ_{k=1..K} (E[Y(kL)] − E[Y((k−1)L)]) / (1+d)^k
//
// that is, the purchases expected in period k, valued at the expected
// average spend and discounted to today as if they fell at the period's
// end. It is the discrete form of Fader, Hardie & Lee's discounted expected
// residual transactions, which has no closed form for the BG/NBD.
//
// Sharp edges: the models assume spend is independent of purchase
// frequency (GammaGammaFit reports the correlation so a caller can check);
// under BG/NBD a customer with no repeat purchase is always alive
// (P(alive) = 1), by the model's construction; predictions are only as good
// as the time unit is consistent.
package clv
