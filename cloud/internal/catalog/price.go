package catalog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// CurrencyExponent is the number of minor-unit digits of an ISO 4217
// currency: 0 for JPY, KRW and a few others, 3 for BHD, KWD and the like,
// 2 for everything else.
func CurrencyExponent(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// ParsePrice converts a decimal price such as "19.99", "19.9" or "19" to
// minor units of currency, exactly. It accepts digits with an optional
// fraction of at most CurrencyExponent(currency) significant digits (extra
// trailing zeros are fine) and rejects signs, exponents, separators and
// values above MaxPriceMinor: "0.005" EUR, "-1" and "1e3" are errors.
func ParsePrice(s, currency string) (int64, error) {
	exp := CurrencyExponent(currency)
	whole, frac, hasDot := strings.Cut(s, ".")
	switch {
	case s == "":
		return 0, errors.New("missing")
	case strings.HasPrefix(s, "-"):
		return 0, errors.New("must not be negative")
	case whole == "" || !allDigits(whole) || (hasDot && (frac == "" || !allDigits(frac))):
		return 0, errors.New("must be a plain decimal such as 19.99 (no sign, exponent or separators)")
	}
	trimmed := strings.TrimRight(frac, "0")
	if len(trimmed) > exp {
		return 0, fmt.Errorf("more than %d decimal places for %s", exp, currencyName(currency))
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 9 {
		return 0, fmt.Errorf("out of range (at most %s)", FormatPrice(MaxPriceMinor, currency))
	}
	digits := whole + trimmed + strings.Repeat("0", exp-len(trimmed))
	n, err := strconv.ParseInt("0"+digits, 10, 64)
	if err != nil || n > MaxPriceMinor {
		return 0, fmt.Errorf("out of range (at most %s)", FormatPrice(MaxPriceMinor, currency))
	}
	return n, nil
}

// FormatPrice renders minor units as the decimal text ParsePrice accepts
// ("19.99" for 1999 EUR, "1500" for 1500 JPY).
func FormatPrice(minor int64, currency string) string {
	exp := CurrencyExponent(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	s := strconv.FormatInt(minor, 10)
	if exp == 0 {
		return sign + s
	}
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	return sign + s[:len(s)-exp] + "." + s[len(s)-exp:]
}

// parseMinor parses an integer price_minor.
func parseMinor(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing")
	}
	if strings.HasPrefix(s, "-") && len(s) > 1 && allDigits(s[1:]) {
		return 0, errors.New("must not be negative")
	}
	if !allDigits(s) {
		return 0, errors.New("must be a whole number of minor units")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxPriceMinor {
		return 0, fmt.Errorf("out of range (at most %d)", MaxPriceMinor)
	}
	return n, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func currencyName(c string) string {
	if c == "" {
		return "this currency"
	}
	return c
}
