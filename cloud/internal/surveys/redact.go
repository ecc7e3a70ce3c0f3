package surveys

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redactions counts what Redact replaced.
type Redactions struct {
	Emails  int `json:"emails"`
	Phones  int `json:"phones"`
	Cards   int `json:"cards"`
	Numbers int `json:"numbers"`
	Names   int `json:"names"`
}

// Total is how many pieces were replaced.
func (r Redactions) Total() int { return r.Emails + r.Phones + r.Cards + r.Numbers + r.Names }

var (
	emailRE = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+`)
	// A run of digits with the separators people write numbers with:
	// spaces, dots, dashes, slashes, parentheses, a leading +.
	numberRE = regexp.MustCompile(`\+?\(?\d(?:[ .\-/()]{0,3}\d)+`)
	// A date, which is left alone: 12.03.2025, 1/3/25, 2025-03-12.
	dateRE = regexp.MustCompile(`^(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{1,2}-\d{1,2})$`)
	// What people write before their name, in the languages of the
	// stores; the name is the word after it and any capitalised words
	// that follow.
	namePhraseRE = regexp.MustCompile(`(?i)\b(?:my name is|my name's|i am called|je m'appelle|je m’appelle|mon nom est|ich heiße|ich heisse|mein name ist|me llamo|mi nombre es|mi chiamo|il mio nome è|mijn naam is|ik heet)\s+`)
)

// notNames are words that follow "my name is" without being a name.
var notNames = map[string]bool{"not": true, "a": true, "an": true, "the": true, "on": true, "in": true, "at": true,
	"and": true, "but": true, "so": true, "also": true, "irrelevant": true, "unimportant": true, "pas": true, "nicht": true, "no": true, "non": true, "niet": true}

// Redact takes personal data out of a free-text comment, replacing:
//
//   - e-mail addresses with [email];
//   - runs of 13 to 19 digits (spaces, dots, dashes allowed between them)
//     that pass the Luhn check, as card numbers do, with [card];
//   - other runs of 7 to 15 digits, as phone numbers are, with [phone],
//     and longer ones with [number]; dates (12.03.2025, 2025-03-12) stay;
//   - the name after "my name is" (or "je m'appelle", "ich heiße", "me
//     llamo", "mi chiamo", "mijn naam is" and the like): the next word and
//     the capitalised words after it, with [name].
//
// It is a safety net for comments shown to staff, not a guarantee of
// anonymity. It misses names written any other way ("Anna here", a
// signature), addresses, account and loyalty numbers shorter than 7
// digits, numbers written in words or with letters between the digits,
// e-mail addresses spelled out ("anna at example dot com"), and digits
// outside ASCII. It over-redacts any long number: order and receipt
// numbers, barcodes, a list of sizes ("38 40 42 44"). Moderators see the
// original. Redact is idempotent: redacting a redacted comment changes
// nothing.
func Redact(comment string) (string, Redactions) {
	var r Redactions
	out := emailRE.ReplaceAllStringFunc(comment, func(string) string {
		r.Emails++
		return "[email]"
	})
	out = numberRE.ReplaceAllStringFunc(out, func(m string) string {
		digits := make([]byte, 0, len(m))
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				digits = append(digits, m[i])
			}
		}
		switch n := len(digits); {
		case n < 7 || dateRE.MatchString(m):
			return m
		case n >= 13 && n <= 19 && luhn(digits):
			r.Cards++
			return "[card]"
		case n <= 15:
			r.Phones++
			return "[phone]"
		default:
			r.Numbers++
			return "[number]"
		}
	})
	return redactNames(out, &r), r
}

// redactNames replaces the words after each name phrase: the first word
// (unless it is plainly not a name) and up to three capitalised words
// after it, each after a single space.
func redactNames(s string, r *Redactions) string {
	locs := namePhraseRE.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		if loc[0] < last {
			continue // inside a name already replaced
		}
		start, end := loc[1], loc[1]
		for words := 0; words < 4; words++ {
			pos := end
			if words > 0 {
				if pos >= len(s) || s[pos] != ' ' {
					break
				}
				pos++
			}
			w := nextWord(s[pos:])
			if w == 0 {
				break
			}
			word := s[pos : pos+w]
			if first, _ := utf8.DecodeRuneInString(word); words > 0 && !unicode.IsUpper(first) {
				break
			}
			if words == 0 && notNames[strings.ToLower(word)] {
				break
			}
			end = pos + w
		}
		if end == start {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString("[name]")
		r.Names++
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// nextWord is the length of the word s starts with: letters, with
// apostrophes and hyphens inside; 0 when s does not start with a letter.
func nextWord(s string) int {
	n := 0
	for i, c := range s {
		switch {
		case unicode.IsLetter(c):
			n = i + utf8.RuneLen(c)
		case (c == '\'' || c == '’' || c == '-') && n > 0 && n == i:
			// may continue the word; counted only if a letter follows
		default:
			return n
		}
	}
	return n
}

// luhn reports whether the digits pass the Luhn check, as card numbers do.
func luhn(digits []byte) bool {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
