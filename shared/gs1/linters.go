package gs1

import (
	"sort"
	"strings"
)

// A linter checks one component of an AI value, in the manner of the GS1
// Barcode Syntax Dictionary's reference linters: it returns nil when the
// component is fine, otherwise the GS1 linter code and the span of the
// offending characters.
type linter func(s string) *lintErr

type lintErr struct {
	code   string
	pos, n int
}

func lintFail(code string, pos, n int) *lintErr { return &lintErr{code: code, pos: pos, n: n} }

// whole flags the complete component.
func whole(code, s string) *lintErr { return lintFail(code, 0, len(s)) }

const (
	cset82Chars = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
	cset39Chars = "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	cset64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// The character-class helpers below are hand-expanded versions of the sets
// above; they avoid a string scan per byte on the hot parsing path.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isCset82(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '%' && c <= '?':
		// '%'..'?' covers % & ' ( ) * + , - . / 0-9 : ; < = > ?
		return true
	case c == '!', c == '"', c == '_':
		return true
	}
	return false
}

func isCset39(c byte) bool {
	return (c >= 'A' && c <= 'Z') || isDigit(c) || c == '#' || c == '-' || c == '/'
}

func isCset64(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '-' || c == '_'
}

func firstNot(s string, ok func(byte) bool) int {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return i
		}
	}
	return -1
}

func lintNumeric(s string) *lintErr {
	if i := firstNot(s, isDigit); i >= 0 {
		return lintFail("GS1_LINTER_NON_DIGIT_CHARACTER", i, 1)
	}
	return nil
}

func lintCset82(s string) *lintErr {
	if i := firstNot(s, isCset82); i >= 0 {
		return lintFail("GS1_LINTER_INVALID_CSET82_CHARACTER", i, 1)
	}
	return nil
}

func lintCset39(s string) *lintErr {
	if i := firstNot(s, isCset39); i >= 0 {
		return lintFail("GS1_LINTER_INVALID_CSET39_CHARACTER", i, 1)
	}
	return nil
}

// lintCset64 accepts base64url with optional "=" padding; the padding rule
// (at most two, and only when it completes a multiple of three) is the one
// GS1 uses for AI (8030).
func lintCset64(s string) *lintErr {
	n := len(s)
	pads := 0
	for n > 0 && s[n-1] == '=' {
		n--
		pads++
	}
	if pads > 2 || (pads > 0 && (n+pads)%3 != 0) {
		return lintFail("GS1_LINTER_INVALID_CSET64_PADDING", n, pads)
	}
	if i := firstNot(s[:n], isCset64); i >= 0 {
		return lintFail("GS1_LINTER_INVALID_CSET64_CHARACTER", i, 1)
	}
	return nil
}

// lintCsum checks a trailing GS1 mod-10 check digit.
func lintCsum(s string) *lintErr {
	if s == "" {
		return whole("GS1_LINTER_TOO_SHORT_FOR_CHECK_DIGIT", s)
	}
	if e := lintNumeric(s); e != nil {
		return e
	}
	if mod10(s[:len(s)-1]) != s[len(s)-1] {
		return lintFail("GS1_LINTER_INCORRECT_CHECK_DIGIT", len(s)-1, 1)
	}
	return nil
}

// csumAlphaWeights are the first 97 primes; position i counted from the
// right of the data (excluding the check pair) gets weight primes[i].
var csumAlphaWeights = [...]int{
	2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
	73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173,
	179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233, 239, 241, 251, 257, 263, 269, 271, 277, 281,
	283, 293, 307, 311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389, 397, 401, 409,
	419, 421, 431, 433, 439, 443, 449, 457, 461, 463, 467, 479, 487, 491, 499, 503, 509,
}

const csumAlphaPairChars = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// lintCsumAlpha checks the GS1 check character pair (AIs 8013, 8014).
func lintCsumAlpha(s string) *lintErr {
	if len(s) < 2 {
		return whole("GS1_LINTER_TOO_SHORT_FOR_CHECK_PAIR", s)
	}
	data := s[:len(s)-2]
	if len(data) > len(csumAlphaWeights) {
		return whole("GS1_LINTER_TOO_LONG_FOR_CHECK_PAIR_IMPLEMENTATION", s)
	}
	if e := lintCset82(data); e != nil {
		return e
	}
	sum := 0
	for i := 0; i < len(data); i++ {
		sum += strings.IndexByte(cset82Chars, data[i]) * csumAlphaWeights[len(data)-1-i]
	}
	sum %= 1021
	if s[len(s)-2] != csumAlphaPairChars[sum>>5] || s[len(s)-1] != csumAlphaPairChars[sum&31] {
		return lintFail("GS1_LINTER_INCORRECT_CHECK_PAIR", len(s)-2, 2)
	}
	return nil
}

// gcpMinLen is the length of the shortest GS1 Company Prefix.
const gcpMinLen = 4

// lintGCPAt checks that a GS1 Company Prefix-shaped run of digits starts at
// offset off. No registry lookup is done: edge agents run offline.
func lintGCPAt(s string, off int) *lintErr {
	if len(s) < off+gcpMinLen {
		if len(s) <= off {
			return whole("GS1_LINTER_TOO_SHORT_FOR_GCP", s)
		}
		return lintFail("GS1_LINTER_TOO_SHORT_FOR_GCP", off, len(s)-off)
	}
	for i := off; i < off+gcpMinLen; i++ {
		if !isDigit(s[i]) {
			return lintFail("GS1_LINTER_INVALID_GCP_PREFIX", i, 1)
		}
	}
	return nil
}

func lintKey(s string) *lintErr     { return lintGCPAt(s, 0) }
func lintKeyOff1(s string) *lintErr { return lintGCPAt(s, 1) }

func lintHasNonDigit(s string) *lintErr {
	if firstNot(s, isDigit) < 0 {
		return whole("GS1_LINTER_REQUIRES_NON_DIGIT_CHARACTER", s)
	}
	return nil
}

func lintNonZero(s string) *lintErr {
	if e := lintNumeric(s); e != nil {
		return e
	}
	if strings.Trim(s, "0") == "" {
		return whole("GS1_LINTER_ILLEGAL_ZERO_VALUE", s)
	}
	return nil
}

func lintZero(s string) *lintErr {
	if s == "" || strings.Trim(s, "0") != "" {
		return whole("GS1_LINTER_NOT_ZERO", s)
	}
	return nil
}

func lintNoZeroPrefix(s string) *lintErr {
	if e := lintNumeric(s); e != nil {
		return e
	}
	if s != "" && s[0] == '0' {
		return lintFail("GS1_LINTER_ILLEGAL_ZERO_PREFIX", 0, 1)
	}
	return nil
}

// oneOf checks a single-character code against the allowed set.
func oneOf(s, allowed, code string) *lintErr {
	if len(s) != 1 || strings.IndexByte(allowed, s[0]) < 0 {
		return whole(code, s)
	}
	return nil
}

func lintWinding(s string) *lintErr { return oneOf(s, "019", "GS1_LINTER_INVALID_WINDING_DIRECTION") }
func lintYesNo(s string) *lintErr   { return oneOf(s, "01", "GS1_LINTER_NOT_ZERO_OR_ONE") }
func lintISO5218(s string) *lintErr {
	return oneOf(s, "0129", "GS1_LINTER_INVALID_BIOLOGICAL_SEX_CODE")
}

func lintHyphen(s string) *lintErr {
	if s == "" || strings.Trim(s, "-") != "" {
		return whole("GS1_LINTER_NOT_HYPHEN", s)
	}
	return nil
}

func lintMediaType(s string) *lintErr {
	if len(s) == 2 && isDigit(s[0]) && isDigit(s[1]) {
		if v := atoi(s); (v >= 1 && v <= 10) || v >= 80 {
			return nil
		}
	}
	return whole("GS1_LINTER_INVALID_MEDIA_TYPE", s)
}

func lintImporterIdx(s string) *lintErr {
	if len(s) != 1 {
		return whole("GS1_LINTER_IMPORTER_IDX_MUST_BE_ONE_CHARACTER", s)
	}
	if !isCset64(s[0]) {
		return whole("GS1_LINTER_INVALID_IMPORT_IDX_CHARACTER", s)
	}
	return nil
}

func lintPieceOfTotal(s string) *lintErr {
	if s == "" || len(s)%2 != 0 {
		return whole("GS1_LINTER_INVALID_LENGTH_FOR_PIECE_OF_TOTAL", s)
	}
	if e := lintNumeric(s); e != nil {
		return e
	}
	h := len(s) / 2
	piece, total := atoi(s[:h]), atoi(s[h:])
	switch {
	case piece == 0:
		return lintFail("GS1_LINTER_ZERO_PIECE_NUMBER", 0, h)
	case total == 0:
		return lintFail("GS1_LINTER_ZERO_TOTAL_PIECES", h, h)
	case piece > total:
		return whole("GS1_LINTER_PIECE_NUMBER_EXCEEDS_TOTAL", s)
	}
	return nil
}

func lintPosInSeqSlash(s string) *lintErr {
	slash := strings.IndexByte(s, '/')
	if slash <= 0 || slash == len(s)-1 {
		return whole("GS1_LINTER_POSITION_IN_SEQUENCE_MALFORMED", s)
	}
	pos, end := s[:slash], s[slash+1:]
	if firstNot(pos, isDigit) >= 0 || firstNot(end, isDigit) >= 0 {
		return whole("GS1_LINTER_POSITION_IN_SEQUENCE_MALFORMED", s)
	}
	if pos[0] == '0' {
		return lintFail("GS1_LINTER_ILLEGAL_ZERO_PREFIX", 0, len(pos))
	}
	if end[0] == '0' {
		return lintFail("GS1_LINTER_ILLEGAL_ZERO_PREFIX", slash+1, len(end))
	}
	if len(pos) > len(end) || (len(pos) == len(end) && pos > end) {
		return whole("GS1_LINTER_POSITION_EXCEEDS_END", s)
	}
	return nil
}

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }

// lintPcEnc checks percent-encoding used in name and address AIs.
func lintPcEnc(s string) *lintErr {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return lintFail("GS1_LINTER_INVALID_PERCENT_SEQUENCE", i, min(3, len(s)-i))
		}
		i += 2
	}
	return nil
}

// geoLint checks a 10-digit fixed-point coordinate offset to be positive.
func geoLint(s, lenCode, badCode string, max int64) *lintErr {
	if len(s) != 10 {
		return whole(lenCode, s)
	}
	if e := lintNumeric(s); e != nil {
		return e
	}
	var v int64
	for i := 0; i < len(s); i++ {
		v = v*10 + int64(s[i]-'0')
	}
	if v > max {
		return whole(badCode, s)
	}
	return nil
}

func lintLatitude(s string) *lintErr {
	return geoLint(s, "GS1_LINTER_LATITUDE_INVALID_LENGTH", "GS1_LINTER_INVALID_LATITUDE", 1800000000)
}

func lintLongitude(s string) *lintErr {
	return geoLint(s, "GS1_LINTER_LONGITUDE_INVALID_LENGTH", "GS1_LINTER_INVALID_LONGITUDE", 3600000000)
}

// inList reports whether s is in a sorted code list.
func inList(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}

func lintISO3166(s string) *lintErr {
	if !inList(iso3166Numeric[:], s) {
		return whole("GS1_LINTER_NOT_ISO3166", s)
	}
	return nil
}

func lintISO3166or999(s string) *lintErr {
	if s != "999" && !inList(iso3166Numeric[:], s) {
		return whole("GS1_LINTER_NOT_ISO3166_OR_999", s)
	}
	return nil
}

func lintISO3166Alpha2(s string) *lintErr {
	if !inList(iso3166Alpha2[:], s) {
		return whole("GS1_LINTER_NOT_ISO3166_ALPHA2", s)
	}
	return nil
}

func lintISO4217(s string) *lintErr {
	if !inList(iso4217Numeric[:], s) {
		return whole("GS1_LINTER_NOT_ISO4217", s)
	}
	return nil
}

func lintPackageType(s string) *lintErr {
	if !inList(packageTypes[:], s) {
		return whole("GS1_LINTER_INVALID_PACKAGE_TYPE", s)
	}
	return nil
}

// atoi converts a short all-digit string; callers check the digits.
func atoi(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}
