package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/testkit"
)

// testPKI is a CA that issues certificates, written as PEM files into dir.
type testPKI struct {
	t      *testing.T
	dir    string
	name   string
	CAFile string
	ca     *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "omnisync test CA " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{t: t, dir: t.TempDir(), name: name, ca: ca, key: key, serial: 1}
	p.CAFile = p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(name, typ string, der []byte) string {
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// issue makes a certificate for cn: a server's for 127.0.0.1 and
// localhost, or a client's.
func (p *testPKI) issue(cn string, server bool) (certFile, keyFile string) {
	p.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return p.write(cn+".pem", "CERTIFICATE", der), p.write(cn+"-key.pem", "EC PRIVATE KEY", keyDER)
}

// Ensure that with the shipped TLS configuration a store's agent that
// trusts the chain's CA syncs over TLS, a client that does not trust it
// cannot connect (the agent still takes sales, offline), and nobody gets
// in without TLS.
func TestStoreTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "server")
	cert, key := pki.issue("omni-nats", true)
	n := startShippedNATS(t, "omnisync-tls.conf", []string{"OMNI_NATS_TLS_CERT=" + cert, "OMNI_NATS_TLS_KEY=" + key}, nats.RootCAs(pki.CAFile))
	s1 := n.store["S1"]

	// Without the CA, and without TLS at all, nobody gets in.
	if nc, err := nats.Connect(s1.URL, append(s1.opts(t), nats.Timeout(2*time.Second))...); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the server's certificate")
	}
	if nc, err := nats.Connect(s1.URL, append(s1.opts(t), nats.Timeout(2*time.Second), nats.Secure(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS10}))...); err == nil {
		nc.Close()
		t.Fatal("connected with TLS 1.0")
	}

	h := startHubWith(t, n.hubURL, func(c *hub.Config) { c.NATSCA = pki.CAFile })
	a := n.startStoreAgent(t, "S1", "pos-1", "--nats-ca", pki.CAFile)
	mustPost(t, a.URL, receiptBody("SKU-TLS", 4))
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-TLS")["S1"] == 4 }, "receipt applied over TLS")

	// An agent that does not trust the CA keeps selling, offline.
	b := n.startStoreAgent(t, "S2", "pos-1")
	mustPost(t, b.URL, receiptBody("SKU-TLS", 2))
	time.Sleep(2 * time.Second)
	if st := status(t, b); st.Connected || st.OutboxDepth != 1 {
		t.Fatalf("untrusting agent: %+v", st)
	}
}

// Ensure that with the shipped mutual-TLS configuration the server admits
// only clients presenting a certificate from the clients' CA, on top of
// their credentials: the hub and a store's agent with theirs sync end to
// end, while a client with good credentials and no certificate, or a
// certificate from another CA, is refused.
func TestStoreMutualTLS(t *testing.T) {
	t.Parallel()
	srvPKI := newTestPKI(t, "server")
	cert, key := srvPKI.issue("omni-nats", true)
	clients := newTestPKI(t, "clients")
	hubCert, hubKey := clients.issue("omni-hub", false)
	storeCert, storeKey := clients.issue("store-S1-pos-1", false)
	rogue := newTestPKI(t, "rogue")
	rogueCert, rogueKey := rogue.issue("store-S1-pos-2", false)

	n := startShippedNATS(t, "omnisync-mtls.conf",
		[]string{"OMNI_NATS_TLS_CERT=" + cert, "OMNI_NATS_TLS_KEY=" + key, "OMNI_NATS_CLIENT_CA=" + clients.CAFile},
		nats.RootCAs(srvPKI.CAFile), nats.ClientCert(hubCert, hubKey))
	s1 := n.store["S1"]
	for name, extra := range map[string][]nats.Option{
		"no client certificate":        nil,
		"a certificate of another CA":  {nats.ClientCert(rogueCert, rogueKey)},
		"a server certificate, no key": {nats.ClientCert(cert, storeKey)},
	} {
		opts := append(s1.opts(t), nats.Timeout(2*time.Second), nats.RootCAs(srvPKI.CAFile))
		if nc, err := nats.Connect(s1.URL, append(opts, extra...)...); err == nil {
			nc.Close()
			t.Errorf("connected with %s", name)
		}
	}

	h := startHubWith(t, n.hubURL, func(c *hub.Config) {
		c.NATSCA, c.NATSCert, c.NATSKey = srvPKI.CAFile, hubCert, hubKey
	})
	a := n.startStoreAgent(t, "S1", "pos-1", "--nats-ca", srvPKI.CAFile, "--nats-cert", storeCert, "--nats-key", storeKey)
	mustPost(t, a.URL, receiptBody("SKU-MTLS", 3))
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-MTLS")["S1"] == 3 }, "receipt applied over mutual TLS")

	// An agent whose certificate another CA signed stays offline, selling.
	b := n.startStoreAgent(t, "S1", "pos-2", "--nats-ca", srvPKI.CAFile, "--nats-cert", rogueCert, "--nats-key", rogueKey)
	mustPost(t, b.URL, receiptBody("SKU-MTLS", 1))
	time.Sleep(2 * time.Second)
	if st := status(t, b); st.Connected || st.OutboxDepth != 1 {
		t.Fatalf("agent with a rogue certificate: %+v", st)
	}
}
