package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a hub given a certificate serves HTTPS only, tells browsers
// to stay on HTTPS, and hands out session cookies that never travel in
// clear (Secure, __Host-).
func TestHubHTTPS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "hub-https")
	cert, key := pki.issue("hub", true)
	caFile := pki.CAFile
	ns := testkit.StartNATS(t)
	h := startHubWith(t, ns.URL(), func(c *hub.Config) { c.TLSCert, c.TLSKey = cert, key })
	base := strings.Replace(h.URL, "http://", "https://", 1)

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA: %v", err)
	}
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("healthz over HTTPS: %s %v", resp.Status, resp.Header)
	}
	if resp, err := http.Get(h.URL + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the hub answered in clear")
		}
	}
	// Set the admin's password with the bootstrap token, then log in.
	req, _ := http.NewRequest(http.MethodPatch, base+"/v1/users/admin", strings.NewReader(`{"password":"correct horse battery"}`))
	req.Header.Set("Authorization", "Bearer "+hubToken)
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("set password: %v %v", resp, err)
	}
	resp.Body.Close()
	form := url.Values{"user": {"admin"}, "password": {"correct horse battery"}, "next": {"/"}}
	resp, err = client.PostForm(base+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || cs[0].Name != "__Host-omni_session" || !cs[0].Secure || !cs[0].HttpOnly ||
		resp.Header.Get("Location") != base+"/" {
		t.Fatalf("login over HTTPS: %s %v %q", resp.Status, cs, resp.Header.Get("Location"))
	}
}
