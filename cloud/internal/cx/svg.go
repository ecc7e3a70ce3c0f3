package cx

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Charts drawn as inline SVG on the server: no script, no CDN, nothing the
// page's Content-Security-Policy (default-src 'none') would block. Every
// label is escaped; every number is formatted by the code here.

// point is one x position of a line chart: the value and its interval.
type point struct {
	Label     string
	Y, Lo, Hi float64
}

const (
	chartW, chartH = 640, 220
	padL, padR     = 44, 12
	padT, padB     = 12, 36
)

// lineChart draws points as a line over the band of their intervals, on
// the y range [lo, hi].
func lineChart(id string, pts []point, lo, hi float64) template.HTML {
	if len(pts) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(id), chartW, chartH, chartW, chartH)
	iw, ih := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(i int) float64 {
		if len(pts) == 1 {
			return padL + iw/2
		}
		return padL + iw*float64(i)/float64(len(pts)-1)
	}
	y := func(v float64) float64 { return padT + ih*(1-(clamp(v, lo, hi)-lo)/(hi-lo)) }
	for _, g := range gridLines(lo, hi) {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e6ea"/><text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#5b6573">%s</text>`,
			padL, chartW-padR, y(g), y(g), padL-6, y(g)+4, num(g))
	}
	var band strings.Builder
	for i, p := range pts {
		fmt.Fprintf(&band, "%.1f,%.1f ", x(i), y(p.Hi))
	}
	for i := len(pts) - 1; i >= 0; i-- {
		fmt.Fprintf(&band, "%.1f,%.1f ", x(i), y(pts[i].Lo))
	}
	fmt.Fprintf(&b, `<polygon class="ci" points="%s" fill="#4a7bd0" fill-opacity="0.15"/>`, strings.TrimSpace(band.String()))
	var line strings.Builder
	for i, p := range pts {
		fmt.Fprintf(&line, "%.1f,%.1f ", x(i), y(p.Y))
	}
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#2457b3" stroke-width="2"/>`, strings.TrimSpace(line.String()))
	every := max(1, len(pts)/8)
	for i, p := range pts {
		fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="3" fill="#2457b3"><title>%s: %s [%s, %s]</title></circle>`,
			x(i), y(p.Y), html.EscapeString(p.Label), num(p.Y), num(p.Lo), num(p.Hi))
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#5b6573">%s</text>`, x(i), chartH-12, html.EscapeString(p.Label))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bar is one bar of a bar chart; Parts split it (stacked), Value is the
// whole when there are no parts.
type bar struct {
	Label string
	Value float64
	Parts []part
}

type part struct {
	Name  string
	Value float64
	Color string
}

// barChart draws horizontal bars, one per item, labelled with the value.
func barChart(id string, bars []bar) template.HTML {
	if len(bars) == 0 {
		return ""
	}
	const rowH, labelW, w = 24, 150, 640
	h := rowH*len(bars) + 8
	total := 0.0
	for _, br := range bars {
		total = math.Max(total, br.sum())
	}
	if total <= 0 {
		total = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(id), w, h, w, h)
	iw := float64(w - labelW - 70)
	for i, br := range bars {
		y := 4 + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end" fill="#1d2733">%s</text>`, labelW-8, y+15, html.EscapeString(br.Label))
		x := float64(labelW)
		parts := br.Parts
		if parts == nil {
			parts = []part{{Value: br.Value, Color: "#4a7bd0"}}
		}
		for _, p := range parts {
			pw := iw * p.Value / total
			if pw > 0 {
				fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s</title></rect>`,
					x, y+2, pw, rowH-8, p.Color, html.EscapeString(p.Name), num(p.Value))
			}
			x += pw
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="12" fill="#5b6573">%s</text>`, x+6, y+15, num(br.sum()))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func (br bar) sum() float64 {
	if br.Parts == nil {
		return br.Value
	}
	s := 0.0
	for _, p := range br.Parts {
		s += p.Value
	}
	return s
}

// columnChart draws a histogram: one column per bucket, labelled below.
func columnChart(id string, labels []string, values []float64) template.HTML {
	if len(values) == 0 {
		return ""
	}
	top := 0.0
	for _, v := range values {
		top = math.Max(top, v)
	}
	if top <= 0 {
		top = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(id), chartW, chartH, chartW, chartH)
	iw, ih := float64(chartW-padL-padR), float64(chartH-padT-padB)
	cw := iw / float64(len(values))
	every := max(1, len(values)/6)
	for i, v := range values {
		hh := ih * v / top
		x := padL + cw*float64(i)
		fmt.Fprintf(&b, `<rect class="col" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7bd0"><title>%s: %s</title></rect>`,
			x+1, padT+ih-hh, math.Max(cw-2, 1), hh, html.EscapeString(labels[i]), num(v))
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="start" fill="#5b6573">%s</text>`, x, chartH-12, html.EscapeString(labels[i]))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#5b6573">%s</text>`, padL-6, padT+10, num(top))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func gridLines(lo, hi float64) []float64 {
	step := (hi - lo) / 4
	out := make([]float64, 5)
	for i := range out {
		out[i] = lo + step*float64(i)
	}
	return out
}

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// num formats a figure for a chart: no decimals from 100 up, one below.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
