package gs1

// linterByName maps GS1 Barcode Syntax Dictionary linter names to their
// implementations. Read-only.
var linterByName = map[string]linter{
	"cset82": lintCset82, "cset39": lintCset39, "cset64": lintCset64, "csetnumeric": lintNumeric,
	"csum": lintCsum, "csumalpha": lintCsumAlpha, "key": lintKey, "keyoff1": lintKeyOff1,
	"gcppos1": lintKey, "gcppos2": lintKeyOff1, "hasnondigit": lintHasNonDigit,
	"yymmdd": lintYYMMDD, "yymmd0": lintYYMMD0, "yyyymmdd": lintYYYYMMDD, "yyyymmd0": lintYYYYMMD0,
	"hh": lintHH, "mi": lintMI, "ss": lintSS, "hhmi": lintHHMI,
	"nonzero": lintNonZero, "zero": lintZero, "nozeroprefix": lintNoZeroPrefix,
	"winding": lintWinding, "yesno": lintYesNo, "iso5218": lintISO5218, "hyphen": lintHyphen,
	"mediatype": lintMediaType, "importeridx": lintImporterIdx, "pieceoftotal": lintPieceOfTotal,
	"posinseqslash": lintPosInSeqSlash, "pcenc": lintPcEnc, "latitude": lintLatitude, "longitude": lintLongitude,
	"iso3166": lintISO3166, "iso3166999": lintISO3166or999, "iso3166alpha2": lintISO3166Alpha2,
	"iso4217": lintISO4217, "packagetype": lintPackageType, "iban": lintIBAN,
	"couponcode": lintCouponCode, "couponposoffer": lintCouponPosOffer,
}

// HasLinter reports whether Lint knows the named linter.
func HasLinter(name string) bool {
	_, ok := linterByName[name]
	return ok
}

// Lint runs one GS1 Barcode Syntax Dictionary linter (by its dictionary
// name, e.g. "csum", "yymmd0", "iso4217") on a value component. It returns
// nil when the component passes, otherwise an *Error whose Code is the GS1
// linter code and whose ErrPos/ErrLen locate the bad characters. Unknown
// linter names yield an error wrapping ErrValue.
func Lint(name, value string) error {
	l, ok := linterByName[name]
	if !ok {
		return &Error{Kind: ErrValue, Pos: -1, Msg: "unknown linter " + name}
	}
	if le := l(value); le != nil {
		return lintError("", value, 0, len(value), le)
	}
	return nil
}
