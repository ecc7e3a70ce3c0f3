package console

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

func TestNiceMax(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {1, 1}, {1.5, 2}, {3, 5}, {7, 10}, {10, 10}, {11, 20}, {240, 500}, {999, 1000},
	} {
		if got := niceMax(tt.in); got != tt.want {
			t.Errorf("niceMax(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// Ensure that every axis label is the value of its grid line: no rounding
// of 1.25 to "1" or 3.75 to "4".
func TestTicksRound(t *testing.T) {
	for _, top := range []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000} {
		n := ticksFor(top)
		for i := 0; i <= n; i++ {
			v := top * float64(i) / float64(n)
			if v != math.Round(v) && top >= 5 {
				t.Errorf("axis to %v in %d steps: tick %v is not a whole number", top, n, v)
			}
		}
	}
}

func TestChartRender(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)
	hour := func(h int) time.Time { return now.Truncate(time.Hour).Add(time.Duration(h) * time.Hour) }
	for _, tt := range []struct {
		name string
		spec chartSpec
		want []string // substrings
		bars int
		not  []string
	}{
		{"sales: one bar per hour with sales", salesChart([]store.HourSales{
			{Hour: hour(-1), Channel: "store", Units: 4}, {Hour: hour(0), Channel: "online", Units: 2}, {Hour: hour(-60), Channel: "store", Units: 9},
		}, now), []string{`id="chart-sales"`, `data-series="in store"`, `data-series="online"`, `>in store</text>`}, 2, nil},
		{"empty", salesChart(nil, now), []string{emptyChartText, `>4<`}, 0, nil},
		{"lag: laggiest store first, one line each", lagChart([]store.LagPoint{
			{Store: "S1", At: now.Add(-time.Hour), Lag: time.Second}, {Store: "S2", At: now.Add(-time.Hour), Lag: time.Minute},
			{Store: "S2", At: now.Add(-50 * time.Minute), Lag: 0},
		}, now), []string{`<polyline class="series" data-series="S2"`, `<polyline class="series" data-series="S1"`, `>100 s<`}, 0, nil},
		{"conflicts: names escaped", chartSpec{ID: "x", Title: "a<b", From: hour(-2), To: hour(0), Step: time.Hour, Bars: true,
			Series: []series{{Name: "<o>", Points: []point{{At: hour(-2), V: 3}}}}}, []string{"a&lt;b", "&lt;o&gt;"}, 1, []string{"<o>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := string(tt.spec.render())
			if !strings.HasPrefix(out, "<svg ") || !strings.HasSuffix(out, "</svg>") || !strings.Contains(out, `viewBox="0 0 640 220"`) {
				t.Fatalf("not an svg element: %.200s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in %s", w, out)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(out, w) {
					t.Errorf("unescaped %q in %s", w, out)
				}
			}
			if n := strings.Count(out, `<rect class="bar"`); n != tt.bars {
				t.Errorf("%d bars, want %d", n, tt.bars)
			}
			if tt.name == "lag: laggiest store first, one line each" && strings.Index(out, `data-series="S2"`) > strings.Index(out, `data-series="S1"`) {
				t.Error("S2, the laggiest, is not first")
			}
		})
	}
}

func TestChartScale(t *testing.T) {
	c := chartSpec{From: time.Unix(0, 0), To: time.Unix(100, 0)}
	for _, tt := range []struct {
		at   int64
		want float64
	}{{0, padL}, {50, padL + plotW/2}, {100, padL + plotW}, {-10, padL}, {200, padL + plotW}} {
		if got := c.xOf(time.Unix(tt.at, 0)); got != tt.want {
			t.Errorf("xOf(%d) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if y := yOf(0, 10); y != padT+plotH {
		t.Errorf("yOf(0) = %v", y)
	}
	if y := yOf(10, 10); y != padT {
		t.Errorf("yOf(top) = %v", y)
	}
	if y := yOf(20, 10); y != padT {
		t.Errorf("yOf(above top) = %v, want clamped", y)
	}
}

func TestCountRows(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	rows := countRows([]store.CountVariance{
		{EventID: "a", SnapshotAt: t0, Variance: -2, Value: -200},
		{EventID: "b", SnapshotAt: t0.Add(time.Hour), Variance: 1, Value: 50},
		{EventID: "a", SnapshotAt: t0, Variance: 3, Value: 30},
	})
	if len(rows) != 2 || rows[0].EventID != "b" || rows[1].Lines != 2 || rows[1].Short != 2 || rows[1].Over != 3 || rows[1].Value != -170 {
		t.Errorf("%+v", rows)
	}
	for _, tt := range []struct {
		in   int64
		want string
	}{{0, "0.00"}, {4900, "49.00"}, {-4905, "-49.05"}, {7, "0.07"}} {
		if got := amount(tt.in); got != tt.want {
			t.Errorf("amount(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
