package egress

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Ensure that every kind of address a webhook must not reach is refused,
// IPv4 written as IPv6 included, and that public ones pass.
func TestCheckAddr(t *testing.T) {
	t.Parallel()
	p := Policy{}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"93.184.215.14", true}, {"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true}, {"8.8.8.8", true},
		{"127.0.0.1", false}, {"127.9.9.9", false}, {"::1", false},
		{"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false}, {"fd00:ec2::254", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"0.0.0.0", false}, {"::", false},
		{"100.64.0.1", false}, {"224.0.0.1", false}, {"255.255.255.255", false}, {"ff02::1", false},
		{"::ffff:10.0.0.1", false}, {"::ffff:169.254.169.254", false}, {"64:ff9b::a00:1", false}, {"2002:a00:1::", false},
	} {
		err := p.CheckAddr(netip.MustParseAddr(c.addr))
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrAddress)) {
			t.Errorf("%s: %v, want ok=%v", c.addr, err, c.ok)
		}
	}
	if err := (Policy{AllowLoopback: true}).CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("loopback with the opt-in: %v", err)
	}
	if err := (Policy{AllowLoopback: true}).CheckAddr(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("the loopback opt-in let a private address through")
	}
}

// Ensure that a rule's URL is refused at save time when its host is not
// on the allow-list, when it is an address the hub must not reach, or
// when its name resolves to one, even among public addresses.
func TestPolicy_Check(t *testing.T) {
	t.Parallel()
	hosts, err := ParseHosts(" crm.example.com, *.hooks.example.net,127.0.0.1,169.254.169.254,inside.example.com,mixed.example.com,localhost")
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Hosts: hosts, Resolver: Names{
		"crm.example.com":     {"93.184.215.14"},
		"a.hooks.example.net": {"93.184.215.15"},
		"inside.example.com":  {"10.0.0.7"},
		"mixed.example.com":   {"93.184.215.16", "192.168.0.9"},
		"localhost":           {"127.0.0.1"},
	}}
	ctx := context.Background()
	for _, c := range []struct {
		url  string
		want error
	}{
		{"https://crm.example.com/hooks/cart", nil},
		{"https://CRM.example.com./x", nil},
		{"https://a.hooks.example.net/x", nil},
		{"https://unknown.example.org/x", nil}, // resolves nowhere: checked again when sent
		{"https://hooks.example.net/x", ErrHost},
		{"https://evil.example.org/x", ErrHost},
		{"http://127.0.0.1:8080/admin", ErrAddress},
		{"http://169.254.169.254/latest/meta-data/", ErrAddress},
		{"http://[::ffff:127.0.0.1]/", ErrHost},
		{"https://inside.example.com/x", ErrAddress},
		{"https://mixed.example.com/x", ErrAddress},
		{"http://localhost:9/x", ErrAddress},
		{"ftp://crm.example.com/x", ErrURL},
		{"https://user:pw@crm.example.com/x", ErrURL},
		{"crm.example.com/x", ErrURL},
	} {
		if c.url == "https://unknown.example.org/x" {
			p2 := p
			p2.Hosts = append(append([]string{}, p.Hosts...), "unknown.example.org")
			if err := p2.Check(ctx, c.url); err != nil {
				t.Errorf("%s: %v", c.url, err)
			}
			continue
		}
		err := p.Check(ctx, c.url)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", c.url, err, c.want)
		}
	}
	for _, bad := range []string{"*.10.0.0.1", "exa mple.com", "*", "a..b"} {
		if _, err := ParseHosts(bad); err == nil {
			t.Errorf("ParseHosts(%q) accepted", bad)
		}
	}
}

// Ensure that the client reaches an allowed receiver on loopback only
// with the opt-in, refuses a name resolving to a private address at dial
// time (the host passed the allow-list), and does not follow a redirect,
// not even to an allowed host.
func TestClient_RealServer(t *testing.T) {
	t.Parallel()
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/ok", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	post := func(p Policy, target string) error {
		resp, err := p.Client(3*time.Second).Post(target, "application/json", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New(resp.Status)
		}
		return nil
	}
	allowed := Policy{Hosts: []string{"127.0.0.1", "hook.example.com"}, AllowLoopback: true}
	if err := post(allowed, srv.URL+"/ok"); err != nil || hits != 1 {
		t.Fatalf("allowed receiver: %v (hits %d)", err, hits)
	}
	if err := post(Policy{Hosts: []string{"127.0.0.1"}}, srv.URL+"/ok"); !errors.Is(err, ErrAddress) {
		t.Fatalf("loopback without the opt-in: %v", err)
	}
	if err := post(allowed, srv.URL+"/moved"); !errors.Is(err, ErrRedirect) || hits != 2 {
		t.Fatalf("redirect: %v (hits %d)", err, hits)
	}
	rebound := allowed
	rebound.Resolver = Names{"hook.example.com": {"10.0.0.5"}}
	if err := post(rebound, "http://hook.example.com:"+port+"/ok"); !errors.Is(err, ErrAddress) || hits != 2 {
		t.Fatalf("a name resolving to a private address: %v (hits %d)", err, hits)
	}
	// The name resolving to loopback, with the opt-in: the dial goes to
	// the address checked, and the Host header stays the name.
	rebound.Resolver = Names{"hook.example.com": {"127.0.0.1"}}
	if err := post(rebound, "http://hook.example.com:"+port+"/ok"); err != nil || hits != 3 {
		t.Fatalf("an allowed name: %v (hits %d)", err, hits)
	}
}
