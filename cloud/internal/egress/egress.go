// Package egress guards the requests the hub sends to addresses HQ typed
// in (the automation's webhooks): it exists so that a rule cannot turn
// the hub into a proxy into its own network (server-side request
// forgery), to the cloud's metadata service, a database port or an admin
// page listening on loopback.
//
// Guarantees, for every request sent through Policy.Client or
// Policy.Transport:
//   - the URL is http or https, without credentials, and its host is on
//     the allow-list (Policy.Hosts), checked again on every dial, so a
//     rule saved before the list shrank is refused when it is sent;
//   - the host name is resolved once per dial and every address it
//     resolves to is checked: one private, loopback, link-local
//     (169.254.169.254, the metadata service, is one), multicast,
//     unspecified or otherwise reserved address refuses the whole name,
//     so a record that mixes a public and a private address does not
//     pass half the time;
//   - the connection goes to the address that was checked (the dial is
//     to the IP literal), so a second lookup answering differently (DNS
//     rebinding) is never made;
//   - redirects are not followed (ErrRedirect): a 3xx answer is the
//     receiver's answer;
//   - no proxy from the environment is used (a proxy would dial for us).
//
// Loopback is refused too unless AllowLoopback is set: an explicit
// opt-in for tests and a hub run on one machine (make run), never for
// production.
//
// Sharp edges: the TLS certificate is checked against the host name as
// usual, so an allowed name pointing at a public address serving a valid
// certificate is trusted: the allow-list is the policy, the address
// checks are the safety net. Addresses are checked by their ranges, not
// by what the network routes: a public address routed into a private
// network by the hub's own routing is not caught.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Errors callers branch on.
var (
	// ErrURL is returned for a URL that is not http(s), has credentials,
	// or has no host.
	ErrURL = errors.New("egress: invalid URL")
	// ErrHost is returned for a host that is not on the allow-list.
	ErrHost = errors.New("egress: host not on the allow-list")
	// ErrAddress is returned for a host that is (or resolves to) an
	// address the hub must not reach: private, loopback, link-local,
	// multicast or reserved.
	ErrAddress = errors.New("egress: address not allowed")
	// ErrRedirect is returned when a receiver answers with a redirect.
	ErrRedirect = errors.New("egress: redirects are not followed")
)

// Resolver looks up a host name's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Names is a Resolver with a fixed table (name to addresses): DNS records
// a test cannot publish, such as a public-looking name answering with a
// private address. A name not in it does not resolve.
type Names map[string][]string

// LookupNetIP implements Resolver.
func (n Names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range n[host] {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("egress: %s: %w", host, err)
		}
		out = append(out, a)
	}
	if out == nil {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// Policy says where requests may go. The zero Policy allows nothing.
type Policy struct {
	// Hosts are the allowed hosts: a name ("crm.example.com", matched
	// exactly, case aside), "*.example.com" (any name under example.com,
	// not example.com itself), or an IP literal.
	Hosts []string
	// AllowLoopback lets requests reach loopback addresses (127.0.0.0/8,
	// ::1): for tests and a local run only.
	AllowLoopback bool
	// Resolver resolves host names (nil: net.DefaultResolver).
	Resolver Resolver
}

// ParseHosts reads a comma-separated allow-list ("crm.example.com,
// *.hooks.example.net"), checking each entry.
func ParseHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if _, err := netip.ParseAddr(name); err == nil {
			if name != h {
				return nil, fmt.Errorf("egress: %q: a wildcard names a domain, not an address", h)
			}
			out = append(out, h)
			continue
		}
		if !validName(name) || strings.Contains(name, "*") {
			return nil, fmt.Errorf("egress: %q is not a host name, *.domain or IP address", h)
		}
		out = append(out, h)
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// hostAllowed reports whether host (lower case, no port, no trailing
// dot) is on the allow-list.
func (p Policy) hostAllowed(host string) bool {
	for _, h := range p.Hosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if h == host {
			return true
		}
	}
	return false
}

// normHost is a URL's or dial address's host as the allow-list compares
// it: lower case, without brackets or a trailing dot.
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// CheckURL parses raw and checks it without any lookup: http(s), no
// credentials, its host on the allow-list and, for an IP literal, an
// address the hub may reach.
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("%w: it must be an http(s) URL with a host and without credentials", ErrURL)
	}
	host := normHost(u.Hostname())
	if !p.hostAllowed(host) {
		return nil, fmt.Errorf("%w: %s (allowed: %s)", ErrHost, host, p.allowed())
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(a); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (p Policy) allowed() string {
	if len(p.Hosts) == 0 {
		return "none; see the hub's --webhook-hosts"
	}
	return strings.Join(p.Hosts, ", ")
}

// Check is CheckURL and a lookup of the host, every address checked:
// what a rule is checked with when it is saved. A name that does not
// resolve now is not refused (it is checked again when sent).
func (p Policy) Check(ctx context.Context, raw string) error {
	u, err := p.CheckURL(raw)
	if err != nil {
		return err
	}
	_, err = p.resolve(ctx, normHost(u.Hostname()))
	if errors.Is(err, ErrAddress) {
		return err
	}
	return nil
}

// reserved are ranges outside netip's predicates that no webhook has any
// business reaching: "this network", shared address space (carrier NAT),
// IETF protocol assignments, documentation, benchmarking, class E and
// broadcast, and IPv6 prefixes that embed or translate IPv4 addresses
// (NAT64, 6to4) or are for documentation.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// CheckAddr reports whether the hub may connect to a: not private,
// loopback (unless AllowLoopback), link-local, multicast, unspecified or
// reserved. An IPv4 address written as IPv6 (::ffff:10.0.0.1) is checked
// as the IPv4 address it is.
func (p Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	bad := ""
	switch {
	case !a.IsValid():
		bad = "invalid"
	case a.IsLoopback():
		if p.AllowLoopback {
			return nil
		}
		bad = "loopback"
	case a.IsUnspecified():
		bad = "unspecified"
	case a.IsPrivate():
		bad = "private"
	case a.IsLinkLocalUnicast():
		bad = "link-local (cloud metadata services live there)"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		bad = "multicast"
	default:
		for _, r := range reserved {
			if r.Contains(a) {
				bad = "reserved (" + r.String() + ")"
				break
			}
		}
	}
	if bad == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is %s", ErrAddress, a, bad)
}

// resolve returns host's addresses, every one checked: an IP literal is
// itself; one bad address refuses the name.
func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(a); err != nil {
			return nil, err
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	var r Resolver = net.DefaultResolver
	if p.Resolver != nil {
		r = p.Resolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("egress: resolve %s: no addresses", host)
	}
	for i, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return nil, fmt.Errorf("%s resolves to a refused address: %w", host, err)
		}
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

// DialContext connects to addr ("host:port") if its host is allowed,
// resolving it once and dialling only the addresses it checked, in turn.
func (p Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	host := normHost(h)
	if !p.hostAllowed(host) {
		return nil, fmt.Errorf("%w: %s", ErrHost, host)
	}
	addrs, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	pn, err := net.LookupPort(network, port)
	if err != nil {
		return nil, fmt.Errorf("egress: port %q: %w", port, err)
	}
	var d net.Dialer
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(pn)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Transport returns an HTTP transport that dials through DialContext and
// uses no proxy.
func (p Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client returns a client over Transport that follows no redirect, with
// timeout for a whole request.
func (p Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.Transport(), Timeout: timeout, CheckRedirect: NoRedirects}
}

// NoRedirects is an http.Client's CheckRedirect that refuses every
// redirect (ErrRedirect).
func NoRedirects(*http.Request, []*http.Request) error { return ErrRedirect }
