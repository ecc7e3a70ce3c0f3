package gs1

// Date and time component linters. GS1 dates are YYMMDD (two-digit year,
// century resolved by the reader) or YYYYMMDD; "d0" variants allow day 00,
// which means "end of month" for AIs such as (15) and (17).

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func lintDate(s string, yearDigits int, dayZeroOK bool) *lintErr {
	n := yearDigits + 4
	if len(s) < n {
		return whole("GS1_LINTER_DATE_TOO_SHORT", s)
	}
	if len(s) > n {
		return whole("GS1_LINTER_DATE_TOO_LONG", s)
	}
	if e := lintNumeric(s); e != nil {
		return e
	}
	year := atoi(s[:yearDigits])
	if yearDigits == 2 {
		// Only leap-ness matters here, and any two-digit year maps to a
		// four-digit year with the same remainder mod 4 in the GS1 window.
		year += 2000
	}
	month, day := atoi(s[yearDigits:yearDigits+2]), atoi(s[yearDigits+2:])
	if month < 1 || month > 12 {
		return lintFail("GS1_LINTER_ILLEGAL_MONTH", yearDigits, 2)
	}
	if (day == 0 && !dayZeroOK) || day > daysIn(year, month) {
		return lintFail("GS1_LINTER_ILLEGAL_DAY", yearDigits+2, 2)
	}
	return nil
}

func lintYYMMDD(s string) *lintErr   { return lintDate(s, 2, false) }
func lintYYMMD0(s string) *lintErr   { return lintDate(s, 2, true) }
func lintYYYYMMDD(s string) *lintErr { return lintDate(s, 4, false) }
func lintYYYYMMD0(s string) *lintErr { return lintDate(s, 4, true) }

func lintTwoDigits(s string, limit int, short, long, illegal string) *lintErr {
	if len(s) < 2 {
		return whole(short, s)
	}
	if len(s) > 2 {
		return whole(long, s)
	}
	if e := lintNumeric(s); e != nil {
		return e
	}
	if atoi(s) >= limit {
		return whole(illegal, s)
	}
	return nil
}

func lintHH(s string) *lintErr {
	return lintTwoDigits(s, 24, "GS1_LINTER_HOUR_TOO_SHORT", "GS1_LINTER_HOUR_TOO_LONG", "GS1_LINTER_ILLEGAL_HOUR")
}

func lintMI(s string) *lintErr {
	return lintTwoDigits(s, 60, "GS1_LINTER_MINUTE_TOO_SHORT", "GS1_LINTER_MINUTE_TOO_LONG", "GS1_LINTER_ILLEGAL_MINUTE")
}

func lintSS(s string) *lintErr {
	return lintTwoDigits(s, 60, "GS1_LINTER_SECOND_TOO_SHORT", "GS1_LINTER_SECOND_TOO_LONG", "GS1_LINTER_ILLEGAL_SECOND")
}

func lintHHMI(s string) *lintErr {
	if len(s) < 4 {
		return whole("GS1_LINTER_HOUR_WITH_MINUTE_TOO_SHORT", s)
	}
	if len(s) > 4 {
		return whole("GS1_LINTER_HOUR_WITH_MINUTE_TOO_LONG", s)
	}
	if e := lintNumeric(s); e != nil {
		return e
	}
	if atoi(s[:2]) > 23 {
		return lintFail("GS1_LINTER_ILLEGAL_HOUR", 0, 2)
	}
	if atoi(s[2:]) > 59 {
		return lintFail("GS1_LINTER_ILLEGAL_MINUTE", 2, 2)
	}
	return nil
}
