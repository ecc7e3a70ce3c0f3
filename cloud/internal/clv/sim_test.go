package clv

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// cdnowModel is the model Fader, Hardie & Lee fitted to the CDNOW sample,
// used to simulate customers that look like real ones.
var cdnowModel = Model{
	Purchases: BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426},
	Spend:     GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44},
}

// simulate draws n customers from m as the models describe them: each has
// a purchase rate from Gamma(r, α), a dropout chance from Beta(a, b), and
// a spend scale from Gamma(q, γ); they are observed for 27 to 39 weeks
// after their first purchase, buy as a Poisson process, may drop out right
// after each repeat purchase, and spend Gamma(p, ν) a purchase.
func simulate(n int, m Model, seed uint64) []Customer {
	src := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	rng := rand.New(src)
	rate := distuv.Gamma{Alpha: m.Purchases.R, Beta: m.Purchases.Alpha, Src: src}
	drop := distuv.Beta{Alpha: m.Purchases.A, Beta: m.Purchases.B, Src: src}
	scale := distuv.Gamma{Alpha: m.Spend.Q, Beta: m.Spend.Gamma, Src: src}
	out := make([]Customer, n)
	for i := range out {
		c := Customer{T: 27 + 12*rng.Float64()}
		lambda, p := rate.Rand(), drop.Rand()
		spend := distuv.Gamma{Alpha: m.Spend.P, Beta: scale.Rand(), Src: src}
		var t, total float64
		for {
			t += rng.ExpFloat64() / lambda
			if t > c.T {
				break
			}
			c.X++
			c.Tx = t
			total += spend.Rand()
			if rng.Float64() < p {
				break
			}
		}
		if c.X > 0 {
			c.AvgSpend = total / float64(c.X)
		}
		out[i] = c
	}
	return out
}
