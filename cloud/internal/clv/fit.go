package clv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/optimize"
)

// Option tunes a fit.
type Option func(*settings)

type settings struct {
	workers       int
	maxIterations int
}

func defaults(opts []Option) settings {
	s := settings{workers: 1, maxIterations: 500}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// WithWorkers evaluates the likelihood on n goroutines (default 1). The
// result does not depend on n: blocks of customers are summed in order.
func WithWorkers(n int) Option {
	return func(s *settings) {
		if n >= 1 {
			s.workers = n
		}
	}
}

// WithMaxIterations bounds the optimiser's iterations (default 500); a
// fit that needs more fails with ErrNoConvergence.
func WithMaxIterations(n int) Option {
	return func(s *settings) {
		if n >= 1 {
			s.maxIterations = n
		}
	}
}

// Diagnostics says how a fit went.
type Diagnostics struct {
	// Iterations and Evaluations of the optimiser (an evaluation is one
	// pass of the likelihood and its gradient over every customer).
	Iterations  int `json:"iterations"`
	Evaluations int `json:"evaluations"`
	// GradientNorm is the largest component of the gradient of the mean
	// log-likelihood, per log-parameter, at the estimate: near 0 at a maximum.
	GradientNorm float64 `json:"gradient_norm"`
	// Status is the optimiser's reason for stopping.
	Status string `json:"status"`
	// Duration is the wall time the fit took.
	Duration time.Duration `json:"duration_ns"`
}

// likelihood is a model's log-likelihood over a data set, evaluated in
// pieces so the driver can spread customers over goroutines.
type likelihood interface {
	// size is the number of records the blocks run over.
	size() int
	// customers is how many customers the records stand for.
	customers() float64
	// prepare readies per-evaluation tables at natural-scale parameters p;
	// it is called before any block, from one goroutine.
	prepare(p []float64)
	// block adds the log-likelihood of customers [lo, hi) to acc[0] and its
	// gradient with respect to p to acc[1:].
	block(lo, hi int, acc []float64)
	// shared adds what customers with the same purchase count share, which
	// prepare computed once per count rather than once per customer.
	shared(acc []float64)
}

// blockSize is how many customers one task sums. Fixed, so the order of
// summation (and so the result, to the last bit) does not depend on the
// number of workers.
const blockSize = 4096

// gradTolerance is the gradient of the mean log-likelihood per
// log-parameter under which a fit counts as converged; gradAccept is the
// looser bound a stopped fit must still meet to be accepted.
const (
	gradTolerance = 1e-8
	gradAccept    = 1e-5
	// maxLogParam bounds |log parameter| (parameters fitted in units of
	// the data's mean, so dimensionless): beyond it (about 1.2e6 or 8e-7)
	// the parameter is running to a boundary the data cannot pin it from.
	maxLogParam = 14
)

// evaluator computes the objective (the mean negative log-likelihood) and
// its gradient in log-parameters, caching the last point: gonum asks for
// the value and the gradient at the same point in separate calls.
type evaluator struct {
	ctx     context.Context
	l       likelihood
	workers int
	n       int

	mu       sync.Mutex
	lastX    []float64
	lastF    float64
	lastG    []float64
	evals    int
	partials [][]float64 // per block
}

func newEvaluator(ctx context.Context, l likelihood, dim, workers int) *evaluator {
	n := l.size()
	blocks := (n + blockSize - 1) / blockSize
	e := &evaluator{ctx: ctx, l: l, workers: min(workers, max(blocks, 1)), n: n, lastG: make([]float64, dim)}
	e.partials = make([][]float64, blocks)
	for i := range e.partials {
		e.partials[i] = make([]float64, dim+1)
	}
	return e
}

// at evaluates at log-parameters theta, or returns the cached result.
func (e *evaluator) at(theta []float64) (float64, []float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastX != nil && slices.Equal(e.lastX, theta) {
		return e.lastF, e.lastG
	}
	e.evals++
	dim := len(theta)
	p := make([]float64, dim)
	for i, t := range theta {
		p[i] = math.Exp(t)
	}
	e.l.prepare(p)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < e.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b := int(next.Add(1) - 1)
				if b >= len(e.partials) || e.ctx.Err() != nil {
					return
				}
				acc := e.partials[b]
				clear(acc)
				e.l.block(b*blockSize, min((b+1)*blockSize, e.n), acc)
			}
		}()
	}
	wg.Wait()
	acc := make([]float64, dim+1)
	for _, part := range e.partials {
		for i, v := range part {
			acc[i] += v
		}
	}
	e.l.shared(acc)
	n := e.l.customers()
	f := -acc[0] / n
	g := make([]float64, dim)
	ok := finite(f) && e.ctx.Err() == nil
	for i := range g {
		// d(-LL/n)/d(log p) = -p · dLL/dp / n
		g[i] = -p[i] * acc[i+1] / n
		ok = ok && finite(g[i])
	}
	if !ok {
		// Outside where the likelihood can be computed (or cancelled): an
		// infinite value makes the line search step back.
		f = math.Inf(1)
		clear(g)
	}
	e.lastX = slices.Clone(theta)
	e.lastF, e.lastG = f, g
	return f, g
}

// minimize fits l from the log-parameter start point, and from fallback if
// the first run does not converge. names label parameters in errors.
func minimize(ctx context.Context, l likelihood, names []string, start, fallback []float64, s settings) ([]float64, float64, Diagnostics, error) {
	began := time.Now()
	theta, ll, d, err := minimizeFrom(ctx, l, names, start, s)
	if errors.Is(err, ErrNoConvergence) && fallback != nil && ctx.Err() == nil {
		theta2, ll2, d2, err2 := minimizeFrom(ctx, l, names, fallback, s)
		d2.Iterations += d.Iterations
		d2.Evaluations += d.Evaluations
		theta, ll, d, err = theta2, ll2, d2, err2
	}
	d.Duration = time.Since(began)
	return theta, ll, d, err
}

func minimizeFrom(ctx context.Context, l likelihood, names []string, start []float64, s settings) ([]float64, float64, Diagnostics, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, Diagnostics{}, err
	}
	e := newEvaluator(ctx, l, len(start), s.workers)
	prob := optimize.Problem{
		Func: func(x []float64) float64 {
			f, _ := e.at(x)
			return f
		},
		Grad: func(grad, x []float64) {
			_, g := e.at(x)
			copy(grad, g)
		},
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	set := &optimize.Settings{
		GradientThreshold: gradTolerance,
		MajorIterations:   s.maxIterations,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-13, Relative: 1e-13, Iterations: 20},
	}
	res, err := optimize.Minimize(prob, start, set, &optimize.BFGS{})
	if cerr := ctx.Err(); cerr != nil {
		return nil, 0, Diagnostics{}, fmt.Errorf("clv: fit stopped: %w", cerr)
	}
	var d Diagnostics
	if res != nil {
		d = Diagnostics{Iterations: res.MajorIterations, Evaluations: e.evals, Status: res.Status.String()}
	}
	if res == nil || res.X == nil {
		return nil, 0, d, fmt.Errorf("%w: %v", ErrNoConvergence, err)
	}
	f, g := e.at(res.X)
	for _, v := range g {
		d.GradientNorm = max(d.GradientNorm, math.Abs(v))
	}
	for i, t := range res.X {
		if math.Abs(t) > maxLogParam {
			return nil, 0, d, fmt.Errorf("%w: %s ran to %g", ErrDegenerate, names[i], math.Exp(t))
		}
	}
	if math.IsInf(f, 0) || d.GradientNorm > gradAccept {
		return nil, 0, d, fmt.Errorf("%w: stopped (%s) with gradient %.3g", ErrNoConvergence, res.Status, d.GradientNorm)
	}
	if res.Status == optimize.Failure {
		// The line search found nothing better: at the limit of float
		// precision, with the gradient within gradAccept.
		d.Status = "LineSearchStalled"
	}
	return res.X, -f * l.customers(), d, nil
}

// xTable indexes records by purchase count, so that terms depending only
// on the count are computed once per distinct count.
type xTable struct {
	values []int     // distinct counts, ascending
	counts []float64 // customers with each count
	index  []int32   // per record, its count's position in values
}

// newXTable indexes records with purchase counts xs, each standing for
// weights[i] customers (1 each when weights is nil).
func newXTable(xs []int, weights []float64) xTable {
	var t xTable
	pos := map[int]int32{}
	for _, x := range xs {
		if _, ok := pos[x]; !ok {
			pos[x] = 0
			t.values = append(t.values, x)
		}
	}
	slices.Sort(t.values)
	for i, v := range t.values {
		pos[v] = int32(i)
	}
	t.counts = make([]float64, len(t.values))
	t.index = make([]int32, len(xs))
	for i, x := range xs {
		t.index[i] = pos[x]
		if weights == nil {
			t.counts[pos[x]]++
		} else {
			t.counts[pos[x]] += weights[i]
		}
	}
	return t
}
