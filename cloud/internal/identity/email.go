package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of RFC 5321.
const (
	maxEmailLen  = 254
	maxLocalLen  = 64
	maxDomainLen = 253
	maxLabelLen  = 63
)

// mailbox is what one provider documents about the addresses it serves.
type mailbox struct {
	// domain is the canonical domain (googlemail.com is gmail.com).
	domain string
	// ignoreDots: the provider delivers "j.o.e" and "joe" to one mailbox.
	ignoreDots bool
	// plusTags: the provider delivers "joe+shop" to "joe" (subaddressing).
	plusTags bool
}

// providers is the e-mail rule table: only providers that document their
// behaviour are here, and only that behaviour is applied. Every other
// domain keeps its local part as typed (lower-cased): a company's server
// may treat '+' or '.' as ordinary characters, and a wrong rule would fuse
// two people, which is worse than keeping one person's two addresses
// apart (a later observation can still link them).
var providers = map[string]mailbox{
	// Google: dots are ignored and "+anything" is dropped; googlemail.com
	// is the same mailbox as gmail.com.
	"gmail.com":      {domain: "gmail.com", ignoreDots: true, plusTags: true},
	"googlemail.com": {domain: "gmail.com", ignoreDots: true, plusTags: true},
	// Microsoft's consumer mail: plus addressing; dots are significant.
	"outlook.com": {domain: "outlook.com", plusTags: true},
	"hotmail.com": {domain: "hotmail.com", plusTags: true},
	"live.com":    {domain: "live.com", plusTags: true},
	"msn.com":     {domain: "msn.com", plusTags: true},
	// Apple iCloud Mail: plus addressing; dots are significant, and
	// me.com/mac.com are not always the same mailbox as icloud.com.
	"icloud.com": {domain: "icloud.com", plusTags: true},
	"me.com":     {domain: "me.com", plusTags: true},
	"mac.com":    {domain: "mac.com", plusTags: true},
	// Fastmail and Proton: plus addressing.
	"fastmail.com":   {domain: "fastmail.com", plusTags: true},
	"fastmail.fm":    {domain: "fastmail.fm", plusTags: true},
	"protonmail.com": {domain: "protonmail.com", plusTags: true},
	"protonmail.ch":  {domain: "protonmail.ch", plusTags: true},
	"proton.me":      {domain: "proton.me", plusTags: true},
	"pm.me":          {domain: "pm.me", plusTags: true},
}

// normalizeEmail applies the e-mail rules (package documentation): the
// whole address lower-cased, the provider's documented rules applied.
func normalizeEmail(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("empty")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("not UTF-8")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", errors.New("no '@'")
	}
	local, domain := strings.ToLower(s[:at]), strings.ToLower(strings.TrimSuffix(s[at+1:], "."))
	if err := checkLocal(local); err != nil {
		return "", err
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	if m, ok := providers[domain]; ok {
		domain = m.domain
		if m.plusTags {
			if i := strings.IndexByte(local, '+'); i >= 0 {
				local = local[:i]
			}
		}
		if m.ignoreDots {
			local = strings.ReplaceAll(local, ".", "")
		}
		if local == "" {
			return "", errors.New("nothing left of the local part after the provider's rules")
		}
	}
	v := local + "@" + domain
	if len(v) > maxEmailLen {
		return "", fmt.Errorf("longer than %d bytes", maxEmailLen)
	}
	return v, nil
}

// checkLocal accepts a dot-atom local part (RFC 5322 atext, and UTF-8 for
// internationalised addresses). Quoted local parts are refused: no shopper
// has one, and they are a way to make two spellings of one mailbox.
func checkLocal(l string) error {
	if l == "" {
		return errors.New("empty local part")
	}
	if len(l) > maxLocalLen {
		return fmt.Errorf("local part longer than %d bytes", maxLocalLen)
	}
	if l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return errors.New("misplaced '.' in the local part")
	}
	for _, c := range l {
		if c >= utf8.RuneSelf {
			if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsMark(c) {
				return fmt.Errorf("character %q not allowed in the local part", c)
			}
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(".!#$%&'*+-/=?^_`{|}~", c)) {
			return fmt.Errorf("character %q not allowed in the local part", c)
		}
	}
	return nil
}

// checkDomain accepts a host name of at least two labels (letters, digits
// and '-', or non-ASCII letters for internationalised names) whose last
// label is not numeric. Address literals ([192.0.2.1]) are refused.
func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty domain")
	}
	if len(d) > maxDomainLen {
		return fmt.Errorf("domain longer than %d bytes", maxDomainLen)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return errors.New("domain has no '.'")
	}
	for _, lb := range labels {
		if lb == "" || len(lb) > maxLabelLen {
			return errors.New("empty or overlong domain label")
		}
		if lb[0] == '-' || lb[len(lb)-1] == '-' {
			return errors.New("domain label starts or ends with '-'")
		}
		for _, c := range lb {
			if c >= utf8.RuneSelf {
				if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsMark(c) {
					return fmt.Errorf("character %q not allowed in the domain", c)
				}
				continue
			}
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("character %q not allowed in the domain", c)
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return errors.New("numeric top-level domain")
	}
	return nil
}
