package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"nats://hub:s3cret@nats.example.com:4222", "nats://nats.example.com:4222"},
		{"nats://store-S1:s3cret@10.0.0.1:4222,nats://store-S1:s3cret@10.0.0.2:4222", "nats://10.0.0.1:4222,nats://10.0.0.2:4222"},
		{"nats://tok3n@127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"tls://u:p@h:4443", "tls://h:4443"},
		{"postgres://omni:s3cret@db:5432/omni?sslmode=verify-full", "postgres://db:5432/omni?sslmode=verify-full"},
		{"postgres://db/omni?user=omni&password=s3cret&sslmode=disable", "postgres://db/omni?password=redacted&sslmode=disable&user=omni"},
		{"http://hub:8080/v1/events?token=s3cret", "http://hub:8080/v1/events?token=redacted"},
		{"hub:s3cret@nats:4222", "nats:4222"},
		{"sqlite:/var/lib/omni/hub.db", "sqlite:/var/lib/omni/hub.db"},
		{"", ""},
	}
	for _, c := range cases {
		got := URL(c.in)
		if got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "tok3n") {
			t.Errorf("URL(%q) kept a secret: %q", c.in, got)
		}
	}
}

func FuzzURL(f *testing.F) {
	f.Add("nats://hub:s3cret@nats:4222")
	f.Add("postgres://u:s3cret@db/x?password=s3cret")
	f.Add("a:s3cret@b,c")
	f.Fuzz(func(t *testing.T, s string) {
		got := URL(s)
		if strings.Contains(s, "://u:s3cret@") && strings.Contains(got, "s3cret@") {
			t.Fatalf("URL(%q) = %q", s, got)
		}
	})
}
