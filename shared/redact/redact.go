// Package redact takes secrets out of what the binaries log and print:
// connection URLs and DSNs lose their user information and the values of
// query parameters that carry secrets, so "nats://hub:s3cret@nats:4222"
// is logged as "nats://nats:4222". Both binaries pass every URL and DSN
// through it before it reaches a log line or an error message.
//
// Sharp edge: it recognises secrets by their place (user info, a query
// parameter named like password or token); a secret elsewhere in a string
// is not found.
package redact

import (
	"net/url"
	"strings"
)

// secretParams are query parameters whose values are secrets (lower case).
var secretParams = map[string]bool{
	"password": true, "pass": true, "passwd": true, "pwd": true, "secret": true,
	"token": true, "auth_token": true, "access_token": true, "key": true, "sslpassword": true,
}

// URL returns s, a URL, a comma-separated list of URLs (as NATS takes),
// or a DSN, without user information and with secret query parameters'
// values replaced by "redacted". A string it cannot parse as a URL loses
// everything up to its last '@'.
func URL(s string) string {
	if strings.Contains(s, ",") && strings.Contains(s, "://") {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			parts[i] = URL(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return stripUserinfo(s)
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if secretParams[strings.ToLower(k)] {
				q.Set(k, "redacted")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// stripUserinfo drops "user:pass@" from a string that is not a URL: all
// up to the last '@', as a password may itself hold '@' or '/'.
func stripUserinfo(s string) string {
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		return s[at+1:]
	}
	return s
}
