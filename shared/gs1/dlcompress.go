package gs1

import "strings"

// Compressed Digital Link URIs (the binary-to-base64url "DL compression"
// of GS1 Digital Link 1.1, digital-link.js dl_compress) are recognised but
// not decoded. Reason: compression was dropped from the current GS1 Digital
// Link standard and from GS1's reference syntax engine, GS1 advises
// against printing compressed links on packs, and a resolver can always
// expand them server-side. Recognising them lets the edge agent tell a
// cashier "compressed link, send to resolver" instead of "not GS1".

// IsCompressedDigitalLink reports whether uri has the shape of a
// compressed Digital Link: an http(s) URI whose last path segment is a
// base64url blob and whose path holds no uncompressed primary key.
func IsCompressedDigitalLink(uri string) bool {
	if !IsDigitalLinkScheme(uri) {
		return false
	}
	rest := uri[strings.Index(uri, "://")+3:]
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 1 {
		return false
	}
	segs := strings.Split(rest[slash+1:], "/")
	last := segs[len(segs)-1]
	if len(last) < 8 || firstNot(last, isCset64) >= 0 || firstNot(last, isDigit) < 0 {
		return false
	}
	for _, s := range segs {
		if d := lookupAI(s); d != nil && d.dlKey && firstNot(s, isDigit) < 0 {
			return false
		}
		if _, ok := convenienceAlphas[s]; ok {
			return false
		}
	}
	return true
}
