package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// The console's charts are inline SVG drawn on the server: no script, no
// chart library, and a viewBox that scales to the page (tablets
// included). Each chart, line and bar has a <title> naming what it
// shows (a bar's with its figure).

// Chart geometry, in viewBox units: the plot sits inside the padding,
// with the value axis on the left and the time axis below.
const (
	chartW, chartH         = 640.0, 220.0
	padL, padR, padT, padB = 48.0, 12.0, 14.0, 28.0
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	legendStep             = 110.0
	// barGroupFill is the share of a step its bars take.
	barGroupFill = 0.8
)

// Chart drawing.
const (
	chartStyle      = "width:100%;height:auto;max-width:48rem;display:block"
	chartFont       = `font-size="11" font-family="system-ui,sans-serif"`
	chartAxis       = `stroke="#8a94a3" stroke-width="1"`
	chartGrid       = `stroke="#dde" stroke-width="1"`
	chartTextColour = `fill="#5b6675"`
	emptyChartText  = "No data in this window."
	// chartXLabels is the divisions of the time axis (the value axis has
	// ticksFor's).
	chartXLabels = 4
	// maxSeries bounds the series drawn (the first ones), maxPoints a
	// line's points (the newest).
	maxSeries, maxPoints = 8, 2000
)

// palette colours series in order (readable on white, distinct in grey).
var palette = []string{"#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7b83", "#bf3989", "#57606a"}

// point is one value of a series at a time.
type point struct {
	At time.Time
	V  float64
}

// series is one line (or bar colour) of a chart.
type series struct {
	Name   string
	Points []point
}

// chartSpec describes a chart over [From, To).
type chartSpec struct {
	ID       string
	Title    string
	From, To time.Time
	// Step is the width of a bar (bar charts) or the spacing of the points.
	Step time.Duration
	// Bars draws grouped bars instead of lines.
	Bars bool
	// Format formats values on the axis ("%.0f" default).
	Format string
	// DayLabels labels the time axis with dates instead of hours.
	DayLabels bool
	Series    []series
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten (at least 1), so
// axis ticks are round numbers.
func niceMax(v float64) float64 {
	if v <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// ticksFor is how many steps divide an axis up to top (a niceMax) into
// round numbers: fifths of 1 or 5 times a power of ten (0, 1, 2, 3, 4, 5;
// 0, 20, ... 100), quarters of 2 times one (0, 5, 10, 15, 20).
func ticksFor(top float64) int {
	lead := top / math.Pow(10, math.Floor(math.Log10(top)))
	if math.Abs(lead-2) < 1e-9 {
		return 4
	}
	return 5
}

// xOf maps t into the plot's x range.
func (c chartSpec) xOf(t time.Time) float64 {
	span := c.To.Sub(c.From)
	if span <= 0 {
		return padL
	}
	f := float64(t.Sub(c.From)) / float64(span)
	return padL + math.Max(0, math.Min(1, f))*plotW
}

// yOf maps v into the plot's y range for an axis up to top.
func yOf(v, top float64) float64 {
	return padT + plotH - math.Max(0, math.Min(1, v/top))*plotH
}

// render draws c as an inline SVG element.
func (c chartSpec) render() template.HTML {
	format := c.Format
	if format == "" {
		format = "%.0f"
	}
	top := 0.0
	n := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			top = math.Max(top, p.V)
			// A bar chart of zeros is empty; a line at zero (a store
			// caught up) is data.
			if !c.Bars || p.V > 0 {
				n++
			}
		}
	}
	// At least one unit per tick, so the axis reads 0, 1, 2... and not
	// 0, 0, 0, 1, 1.
	top = niceMax(math.Max(top, 5))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" role="img" viewBox="0 0 %g %g" preserveAspectRatio="xMidYMid meet" style="%s" %s>`,
		template.HTMLEscapeString(c.ID), chartW, chartH, chartStyle, chartFont)
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(c.Title))
	// Grid and value axis, at steps that are round numbers too.
	ticks := ticksFor(top)
	for i := 0; i <= ticks; i++ {
		v := top * float64(i) / float64(ticks)
		y := yOf(v, top)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" %s/>`, padL, y, chartW-padR, y, chartGrid)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" %s>%s</text>`, padL-4, y+4, chartTextColour, template.HTMLEscapeString(fmt.Sprintf(format, v)))
	}
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" %s/>`, padL, padT+plotH, chartW-padR, padT+plotH, chartAxis)
	// Time axis labels.
	layout := "02 15:04" // day of month, hour
	if c.DayLabels {
		layout = "01-02"
	}
	for i := 0; i <= chartXLabels; i++ {
		t := c.From.Add(time.Duration(float64(c.To.Sub(c.From)) * float64(i) / chartXLabels))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case chartXLabels:
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="%s" %s>%s</text>`, c.xOf(t), chartH-8, anchor, chartTextColour, t.UTC().Format(layout))
	}
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle" %s>%s</text>`, padL+plotW/2, padT+plotH/2, chartTextColour, emptyChartText)
	}
	shown := c.Series
	if len(shown) > maxSeries {
		shown = shown[:maxSeries]
	}
	for i, s := range shown {
		colour := palette[i%len(palette)]
		if c.Bars {
			c.bars(&b, s, i, len(shown), top, colour, format)
		} else {
			c.line(&b, s, top, colour)
		}
		fmt.Fprintf(&b, `<g class="legend"><rect x="%g" y="2" width="10" height="10" fill="%s"/><text x="%g" y="11">%s</text></g>`,
			padL+float64(i)*legendStep, colour, padL+float64(i)*legendStep+14, template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// line draws s as a polyline, each point with a tooltip.
func (c chartSpec) line(b *strings.Builder, s series, top float64, colour string) {
	pts := s.Points
	if len(pts) > maxPoints {
		pts = pts[len(pts)-maxPoints:]
	}
	coords := make([]string, len(pts))
	for i, p := range pts {
		coords[i] = fmt.Sprintf("%.1f,%.1f", c.xOf(p.At), yOf(p.V, top))
	}
	fmt.Fprintf(b, `<polyline class="series" data-series="%s" fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`,
		template.HTMLEscapeString(s.Name), colour, strings.Join(coords, " "), template.HTMLEscapeString(s.Name))
	if len(pts) == 1 {
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, c.xOf(pts[0].At), yOf(pts[0].V, top), colour)
	}
}

// bars draws s as the i-th of k bars in each step.
func (c chartSpec) bars(b *strings.Builder, s series, i, k int, top float64, colour, format string) {
	step := c.Step
	if step <= 0 {
		step = time.Hour
	}
	slot := c.xOf(c.From.Add(step)) - c.xOf(c.From)
	w := slot * barGroupFill / float64(k)
	for _, p := range s.Points {
		if p.V <= 0 {
			continue
		}
		x := c.xOf(p.At) + slot*(1-barGroupFill)/2 + float64(i)*w
		y := yOf(p.V, top)
		fmt.Fprintf(b, `<rect class="bar" data-series="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
			template.HTMLEscapeString(s.Name), x, y, math.Max(w, 0.5), padT+plotH-y, colour,
			template.HTMLEscapeString(s.Name), p.At.UTC().Format("2006-01-02 15:04"), fmt.Sprintf(format, p.V))
	}
}
