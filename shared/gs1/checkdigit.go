package gs1

import "strings"

// mod10 returns the GS1 mod-10 check digit for the given digits (weights 3
// and 1 alternating from the right). The caller guarantees all-digit input.
func mod10(digits string) byte {
	sum := 0
	w := 3
	for i := len(digits) - 1; i >= 0; i-- {
		sum += w * int(digits[i]-'0')
		w = 4 - w
	}
	return byte('0' + (10-sum%10)%10)
}

// CheckDigit computes the GS1 mod-10 check digit for a GTIN, SSCC, GLN or
// other GS1 key given without its check digit.
func CheckDigit(digits string) (byte, error) {
	if digits == "" {
		return 0, newErr(ErrLength, "", -1, "no digits to compute a check digit for")
	}
	if i := firstNot(digits, isDigit); i >= 0 {
		return 0, newErr(ErrCharset, "", i, "non-digit character")
	}
	return mod10(digits), nil
}

// ValidateCheckDigit checks that the last digit of s is the correct GS1
// mod-10 check digit for the preceding digits. It accepts any length, so it
// serves GTIN-8/12/13/14, GLN (13), SSCC (18), GSIN (17) and GSRN (18).
func ValidateCheckDigit(s string) error {
	if len(s) < 2 {
		return newErr(ErrLength, "", -1, "too short to carry a check digit")
	}
	if i := firstNot(s, isDigit); i >= 0 {
		return newErr(ErrCharset, "", i, "non-digit character")
	}
	if want := mod10(s[:len(s)-1]); want != s[len(s)-1] {
		return &Error{Kind: ErrCheckDigit, Pos: len(s) - 1, Code: "GS1_LINTER_INCORRECT_CHECK_DIGIT",
			Value: s, ErrPos: len(s) - 1, ErrLen: 1,
			Msg: "incorrect check digit, expected " + string(want)}
	}
	return nil
}

// ParseGTIN accepts a GTIN-8, GTIN-12 (UPC-A), GTIN-13 (EAN-13) or GTIN-14
// as typed by a person, ignoring spaces and hyphens (so ISBN-13s such as
// "978-0-471-11709-4" work), and returns its digits after checking length and
// check digit.
func ParseGTIN(s string) (string, error) {
	if strings.ContainsAny(s, " -") {
		s = strings.NewReplacer(" ", "", "-", "").Replace(s)
	}
	if i := firstNot(s, isDigit); i >= 0 {
		return "", newErr(ErrCharset, "", i, "GTIN must be all digits")
	}
	switch len(s) {
	case 8, 12, 13, 14:
	default:
		return "", newErr(ErrLength, "", -1, "GTIN must have 8, 12, 13 or 14 digits")
	}
	if err := ValidateCheckDigit(s); err != nil {
		return "", err
	}
	return s, nil
}

// NormalizeGTIN returns the GTIN-14 form (left-padded with zeros) of any
// valid GTIN-8/12/13/14. This is the form carried by AI (01) and the form
// downstream services key products by.
func NormalizeGTIN(s string) (string, error) {
	g, err := ParseGTIN(s)
	if err != nil {
		return "", err
	}
	return strings.Repeat("0", 14-len(g)) + g, nil
}

// ShortestGTIN returns the shortest GTIN form (8, 12, 13 or 14 digits) of a
// GTIN-14, i.e. the digits a retail point of sale would print. GTIN-8 is
// only chosen for values with six leading zeros.
func ShortestGTIN(gtin14 string) string {
	if len(gtin14) != 14 {
		return gtin14
	}
	switch {
	case strings.HasPrefix(gtin14, "000000"):
		return gtin14[6:]
	case strings.HasPrefix(gtin14, "00"):
		return gtin14[2:]
	case gtin14[0] == '0':
		return gtin14[1:]
	}
	return gtin14
}
