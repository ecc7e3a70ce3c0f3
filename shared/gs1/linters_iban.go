package gs1

// ibanCountries lists the countries that issue IBANs (SWIFT IBAN
// registry), sorted for binary search.
var ibanCountries = [...]string{
	"AD", "AE", "AL", "AT", "AZ", "BA", "BE", "BG", "BH", "BI", "BR", "BY", "CH", "CR", "CY", "CZ",
	"DE", "DJ", "DK", "DO", "EE", "EG", "ES", "FI", "FK", "FO", "FR", "GB", "GE", "GI", "GL", "GR",
	"GT", "HN", "HR", "HU", "IE", "IL", "IQ", "IS", "IT", "JO", "KW", "KZ", "LB", "LC", "LI", "LT",
	"LU", "LV", "LY", "MC", "MD", "ME", "MK", "MN", "MR", "MT", "MU", "NI", "NL", "NO", "OM", "PK",
	"PL", "PS", "PT", "QA", "RO", "RS", "RU", "SA", "SC", "SD", "SE", "SI", "SK", "SM", "SO", "ST",
	"SV", "TL", "TN", "TR", "UA", "VA", "VG", "XK", "YE",
}

// ibanMinLen is the length of the shortest IBAN (Norway). Per-country
// lengths are not enforced: registries change faster than firmware.
const ibanMinLen = 15

// lintIBAN checks an International Bank Account Number (AI 8007): shape,
// country and the ISO 7064 mod 97-10 checksum.
func lintIBAN(s string) *lintErr {
	if len(s) < 5 {
		return whole("GS1_LINTER_IBAN_TOO_SHORT", s)
	}
	if len(s) > 34 {
		return whole("GS1_LINTER_IBAN_TOO_LONG", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !(c >= 'A' && c <= 'Z') {
			return lintFail("GS1_LINTER_INVALID_IBAN_CHARACTER", i, 1)
		}
	}
	if !inList(ibanCountries[:], s[:2]) {
		return lintFail("GS1_LINTER_ILLEGAL_IBAN_COUNTRY_CODE", 0, 2)
	}
	if len(s) < ibanMinLen {
		return whole("GS1_LINTER_IBAN_TOO_SHORT", s)
	}
	// Move the first four characters to the end and reduce mod 97, with
	// letters expanded to two-digit numbers A=10 ... Z=35.
	rem := 0
	for k := 0; k < len(s); k++ {
		c := s[(k+4)%len(s)]
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	if rem != 1 {
		return lintFail("GS1_LINTER_INCORRECT_IBAN_CHECKSUM", 2, 2)
	}
	return nil
}
