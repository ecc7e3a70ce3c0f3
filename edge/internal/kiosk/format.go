package kiosk

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/downsync"
)

// LowStock is the availability at or below which the page says "Only N left".
const LowStock = 3

// FormatPrice formats a price in minor units for a shopper: "€49.95" for
// EUR, "$49.95" for USD, "£49.95" for GBP, otherwise the amount followed by
// the ISO 4217 code ("49.95 CHF"). Currencies without minor units (JPY) or
// with three decimals (KWD) are scaled accordingly.
func FormatPrice(minor int64, currency string) string {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	exp := minorDigits(cur)
	var u uint64
	neg := minor < 0
	if neg {
		u = uint64(-(minor + 1)) + 1 // safe for math.MinInt64
	} else {
		u = uint64(minor)
	}
	pow := uint64(1)
	for range exp {
		pow *= 10
	}
	s := group(u / pow)
	if exp > 0 {
		frac := strconv.FormatUint(u%pow, 10)
		s += "." + strings.Repeat("0", exp-len(frac)) + frac
	}
	sign := ""
	if neg {
		sign = "-"
	}
	switch cur {
	case "EUR":
		return sign + "€" + s
	case "USD":
		return sign + "$" + s
	case "GBP":
		return sign + "£" + s
	case "":
		return sign + s
	}
	return sign + s + " " + cur
}

// minorDigits is the number of decimals of an ISO 4217 currency.
func minorDigits(cur string) int {
	switch cur {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// group writes n with thousands separators: 1,299.
func group(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// stockLabel is availability as a shopper reads it, with a CSS class that
// colours it (the text says it too: colour is never the only signal).
type stockLabel struct {
	Text  string
	Class string // in, low, out, unknown
}

// levelLabel says how much of a variant a location has.
func levelLabel(l *downsync.Level) stockLabel {
	switch {
	case l == nil:
		return stockLabel{Text: "No stock information", Class: "unknown"}
	case l.Available <= 0:
		return stockLabel{Text: "Out of stock", Class: "out"}
	case l.Available <= LowStock:
		return stockLabel{Text: fmt.Sprintf("Only %d left", l.Available), Class: "low"}
	}
	return stockLabel{Text: "In stock", Class: "in"}
}

// Freshness says how current the stock shown is: "Stock updated just now",
// "Stock as of 14:05", or, when the agent is offline or far behind,
// "This kiosk is offline — stock shown as of 14:05". Times are shown in
// now's location; a day other than today adds the date.
func Freshness(asOf, now time.Time, stale bool) string {
	if asOf.IsZero() {
		if stale {
			return "This kiosk is offline — stock may not be up to date"
		}
		return "Stock information is not available yet"
	}
	when := clock(asOf, now)
	switch {
	case stale:
		return "This kiosk is offline — stock shown as of " + when
	case now.Sub(asOf) < time.Minute:
		return "Stock updated just now"
	}
	return "Stock as of " + when
}

// clock is "14:05" for today, "3 Mar 14:05" for another day this year and
// "3 Mar 2025 14:05" otherwise.
func clock(t, now time.Time) string {
	t = t.In(now.Location())
	ty, tm, td := t.Date()
	ny, nm, nd := now.Date()
	switch {
	case ty == ny && tm == nm && td == nd:
		return t.Format("15:04")
	case ty == ny:
		return t.Format("2 Jan 15:04")
	}
	return t.Format("2 Jan 2006 15:04")
}

// stars draws a rating as five stars, rounded to the nearest whole star.
func stars(avg float64) string {
	n := int(math.Round(avg))
	n = min(max(n, 0), 5)
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}
