package gs1

import (
	"strings"
	"time"
)

// Typed interpretation of AI values: dates, date-times and decimal
// quantities, e.g. to check a best-before date at the till.

// fullYear resolves a two-digit year with the GS1 sliding window (GS1
// General Specifications 7.12): years more than 50 ahead of ref are in the
// previous century, years more than 49 behind it in the next one.
func fullYear(yy int, ref time.Time) int {
	cur := ref.Year()
	century := cur - cur%100
	switch diff := yy - cur%100; {
	case diff >= 51:
		return century - 100 + yy
	case diff <= -50:
		return century + 100 + yy
	}
	return century + yy
}

// Dates interprets a date or date-time AI value: (11)-(17), (4324), (4326),
// (7003), (7006), (7007), (7011), (7250), (7251), (8008) and the like. It
// returns one time per date component (two for the harvest date range of
// (7007)); hasTime reports whether the value carried a time of day.
// Two-digit years are resolved relative to ref, and day 00 (allowed for
// best-before and expiry dates) means the last day of the month. Times are
// in UTC, as the data carries no zone.
func (v AIValue) Dates(ref time.Time) (dates []time.Time, hasTime bool, err error) {
	d := lookupAI(v.AI)
	if d == nil {
		return nil, false, newErr(ErrUnknownAI, v.AI, -1, "unknown AI")
	}
	if e := validateValue(v.AI, d, v.Value, false); e != nil {
		return nil, false, e
	}
	pos := 0
	for _, c := range d.comps {
		if pos >= len(v.Value) {
			break
		}
		n := min(c.max, len(v.Value)-pos)
		part := v.Value[pos : pos+n]
		pos += n
		switch c.timeFmt {
		case "yymmdd", "yymmd0", "yyyymmdd", "yyyymmd0":
			var y int
			if strings.HasPrefix(c.timeFmt, "yyyy") {
				y, part = atoi(part[:4]), part[4:]
			} else {
				y, part = fullYear(atoi(part[:2]), ref), part[2:]
			}
			m, day := atoi(part[:2]), atoi(part[2:4])
			if day == 0 {
				day = daysIn(y, m)
			}
			dates = append(dates, time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC))
		case "hh", "mi", "ss", "hhmi":
			if len(dates) == 0 {
				continue
			}
			t := dates[len(dates)-1]
			h, mi, s := t.Hour(), t.Minute(), t.Second()
			switch c.timeFmt {
			case "hh":
				h = atoi(part)
			case "mi":
				mi = atoi(part)
			case "ss":
				s = atoi(part)
			case "hhmi":
				h, mi = atoi(part[:2]), atoi(part[2:])
			}
			dates[len(dates)-1] = time.Date(t.Year(), t.Month(), t.Day(), h, mi, s, 0, time.UTC)
			hasTime = true
		}
	}
	if len(dates) == 0 {
		return nil, false, newErr(ErrValue, v.AI, -1, "AI does not carry a date")
	}
	return dates, hasTime, nil
}

// decimalPlaces returns the implied decimal places of a measure or amount
// AI (310n-369n, 390n-395n), or -1.
func decimalPlaces(ai string) int {
	if len(ai) != 4 || firstNot(ai, isDigit) >= 0 {
		return -1
	}
	p := atoi(ai[:2])
	if (p >= 31 && p <= 36) || (p == 39 && ai[2] <= '5') {
		return int(ai[3] - '0')
	}
	return -1
}

// Decimal interprets a measure or amount AI (310n-369n weights and
// dimensions, 390n-395n amounts and prices), whose last AI digit gives the
// number of decimal places: (3103)017230 is "17.230". Leading zeros are
// dropped, trailing ones kept. For (391n) and (393n) the ISO 4217 currency
// code is returned separately.
func (v AIValue) Decimal() (amount, currency string, err error) {
	n := decimalPlaces(v.AI)
	if n < 0 {
		return "", "", newErr(ErrValue, v.AI, -1, "AI does not carry a decimal quantity")
	}
	if e := ValidateAIValue(v.AI, v.Value); e != nil {
		return "", "", e
	}
	digits := v.Value
	if v.AI[:3] == "391" || v.AI[:3] == "393" {
		currency, digits = digits[:3], digits[3:]
	}
	if len(digits) <= n {
		digits = strings.Repeat("0", n-len(digits)+1) + digits
	}
	intPart := strings.TrimLeft(digits[:len(digits)-n], "0")
	if intPart == "" {
		intPart = "0"
	}
	if n == 0 {
		return intPart, currency, nil
	}
	return intPart + "." + digits[len(digits)-n:], currency, nil
}
