package surveys

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// GroupBy chooses what Aggregate groups by, besides the survey.
type GroupBy uint8

// What to group by; combine with |.
const (
	ByStore GroupBy = 1 << iota
	ByChannel
	ByWeek
)

// Week is an ISO 8601 week.
type Week struct {
	Year int `json:"year"`
	Week int `json:"week"`
}

// WeekOf is the ISO week of t in t's location.
func WeekOf(t time.Time) Week {
	y, w := t.ISOWeek()
	return Week{Year: y, Week: w}
}

// String is the ISO form, "2025-W09"; empty for the zero Week.
func (w Week) String() string {
	if w == (Week{}) {
		return ""
	}
	return fmt.Sprintf("%04d-W%02d", w.Year, w.Week)
}

// MarshalText writes the ISO form.
func (w Week) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads the ISO form.
func (w *Week) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*w = Week{}
		return nil
	}
	y, wk, ok := strings.Cut(string(b), "-W")
	yi, err1 := strconv.Atoi(y)
	wi, err2 := strconv.Atoi(wk)
	if !ok || err1 != nil || err2 != nil || wi < 1 || wi > 53 {
		return fmt.Errorf("surveys: %q is not an ISO week like 2025-W09", b)
	}
	*w = Week{Year: yi, Week: wi}
	return nil
}

// Result is the score of one group of answers.
type Result struct {
	Survey string `json:"survey"`
	Kind   Kind   `json:"kind"`
	// Store, Channel and Week are the group, when grouped by them.
	Store   string `json:"store,omitempty"`
	Channel string `json:"channel,omitempty"`
	Week    Week   `json:"week,omitzero"`

	// Responses is how many answers with a score counted, Partial how
	// many of those were not submitted, Unscored how many partial answers
	// had no score yet (kept, not counted), Comments how many counted
	// answers have a comment.
	Responses int `json:"responses"`
	Partial   int `json:"partial"`
	Unscored  int `json:"unscored"`
	Comments  int `json:"comments"`

	// NPS answers by class.
	Promoters  int `json:"promoters,omitempty"`
	Passives   int `json:"passives,omitempty"`
	Detractors int `json:"detractors,omitempty"`
	// Satisfied is how many CSAT answers were 4 or 5.
	Satisfied int `json:"satisfied,omitempty"`
	// StdDev is the sample standard deviation of CES answers.
	StdDev float64 `json:"std_dev,omitempty"`

	// Score is the NPS (−100..100), the CSAT % (0..100) or the CES mean
	// (1..7), and [Low, High] its confidence interval (see the package
	// documentation for the methods).
	Score float64 `json:"score"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

type groupKey struct {
	survey, store, channel string
	week                   Week
}

// Aggregate scores answers by survey and the groups asked for, with
// confidence intervals at level (0.95 for 95%). It keeps one answer per
// respondent and survey first (Dedupe). Groups without a scored answer are
// left out; results are sorted by survey, store, channel and week. It
// fails, wrapping ErrInvalidAnswer, on an invalid answer or a survey
// answered on two scales.
func Aggregate(answers []Answer, by GroupBy, level float64) ([]Result, error) {
	if !(level > 0 && level < 1) {
		return nil, fmt.Errorf("surveys: confidence level %g not between 0 and 1", level)
	}
	kinds := map[string]Kind{}
	for _, a := range answers {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("answer %q: %w", a.ID, err)
		}
		if k, ok := kinds[a.Survey]; ok && k != a.Kind {
			return nil, fmt.Errorf("%w: survey %q answered as %s and as %s", ErrInvalidAnswer, a.Survey, k, a.Kind)
		}
		kinds[a.Survey] = a.Kind
	}
	groups := map[groupKey]*Result{}
	sums := map[groupKey]*[2]float64{} // CES: sum and sum of squares
	for _, a := range Dedupe(answers) {
		k := groupKey{survey: a.Survey}
		if by&ByStore != 0 {
			k.store = a.Store
		}
		if by&ByChannel != 0 {
			k.channel = a.Channel
		}
		if by&ByWeek != 0 {
			k.week = WeekOf(a.At)
		}
		r := groups[k]
		if r == nil {
			r = &Result{Survey: a.Survey, Kind: a.Kind, Store: k.store, Channel: k.channel, Week: k.week}
			groups[k] = r
			sums[k] = &[2]float64{}
		}
		if !a.Scored {
			r.Unscored++
			continue
		}
		r.Responses++
		if !a.Complete {
			r.Partial++
		}
		if strings.TrimSpace(a.Comment) != "" {
			r.Comments++
		}
		switch a.Kind {
		case NPS:
			switch {
			case a.Score >= 9:
				r.Promoters++
			case a.Score >= 7:
				r.Passives++
			default:
				r.Detractors++
			}
		case CSAT:
			if a.Score >= 4 {
				r.Satisfied++
			}
		case CES:
			s := sums[k]
			s[0] += float64(a.Score)
			s[1] += float64(a.Score * a.Score)
		}
	}
	z := distuv.UnitNormal.Quantile(1 - (1-level)/2)
	var out []Result
	for k, r := range groups {
		if r.Responses == 0 {
			continue
		}
		switch r.Kind {
		case NPS:
			r.Score, r.Low, r.High = npsInterval(r.Promoters, r.Detractors, r.Responses, z)
		case CSAT:
			r.Score, r.Low, r.High = wilson(r.Satisfied, r.Responses, z)
		case CES:
			s := sums[k]
			r.Score, r.StdDev, r.Low, r.High = tInterval(s[0], s[1], r.Responses, level)
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Survey, b.Survey), cmp.Compare(a.Store, b.Store), cmp.Compare(a.Channel, b.Channel),
			cmp.Compare(a.Week.Year, b.Week.Year), cmp.Compare(a.Week.Week, b.Week.Week))
	})
	return out, nil
}

// npsInterval is the NPS of pro promoters and det detractors among n, and
// its adjusted Wald interval (Rocks 2016), in points.
func npsInterval(pro, det, n int, z float64) (score, lo, hi float64) {
	score = 100 * float64(pro-det) / float64(n)
	na := float64(n) + 3
	pp, pd := (float64(pro)+0.75)/na, (float64(det)+0.75)/na
	d := pp - pd
	half := z * math.Sqrt((pp+pd-d*d)/na)
	return score, 100 * max(d-half, -1), 100 * min(d+half, 1)
}

// wilson is the percentage k/n and its Wilson score interval.
func wilson(k, n int, z float64) (score, lo, hi float64) {
	p, fn := float64(k)/float64(n), float64(n)
	z2 := z * z
	den := 1 + z2/fn
	centre := (p + z2/(2*fn)) / den
	half := z / den * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn))
	return 100 * p, 100 * max(centre-half, 0), 100 * min(centre+half, 1)
}

// tInterval is the CES mean of n answers with sum and sum of squares, their
// sample standard deviation, and the Student t interval; with one answer
// the interval is the whole scale.
func tInterval(sum, sumSq float64, n int, level float64) (mean, sd, lo, hi float64) {
	fn := float64(n)
	mean = sum / fn
	if n < 2 {
		return mean, 0, 1, 7
	}
	sd = math.Sqrt(max(sumSq-fn*mean*mean, 0) / (fn - 1))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: fn - 1}.Quantile(1 - (1-level)/2)
	half := t * sd / math.Sqrt(fn)
	return mean, sd, max(mean-half, 1), min(mean+half, 7)
}
