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

// testCA makes a CA and a server certificate for 127.0.0.1, written as PEM
// files into dir: ca.pem, server.pem, server-key.pem.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "omnisync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "omni-nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// Ensure that with the shipped TLS configuration a store's agent that
// trusts the chain's CA syncs over TLS, a client that does not trust it
// cannot connect (the agent still takes sales, offline), and nobody gets
// in without TLS.
func TestStoreTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, cert, key := testCA(t, dir)
	n := startShippedNATS(t, "omnisync-tls.conf", []string{"OMNI_NATS_TLS_CERT=" + cert, "OMNI_NATS_TLS_KEY=" + key}, nats.RootCAs(caFile))

	// Without the CA, and without TLS at all, nobody gets in.
	if nc, err := nats.Connect(n.store["S1"], nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the server's certificate")
	}
	if nc, err := nats.Connect(n.store["S1"], nats.Timeout(2*time.Second), nats.Secure(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS10})); err == nil {
		nc.Close()
		t.Fatal("connected with TLS 1.0")
	}

	h := startHubWith(t, n.hubURL, func(c *hub.Config) { c.NATSCA = caFile })
	a := startAgent(t, "S1", "pos-1", n.store["S1"], "--nats-ca", caFile)
	mustPost(t, a.URL, receiptBody("SKU-TLS", 4))
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-TLS")["S1"] == 4 }, "receipt applied over TLS")

	// An agent that does not trust the CA keeps selling, offline.
	b := startAgent(t, "S2", "pos-1", n.store["S2"])
	mustPost(t, b.URL, receiptBody("SKU-TLS", 2))
	time.Sleep(2 * time.Second)
	if st := status(t, b); st.Connected || st.OutboxDepth != 1 {
		t.Fatalf("untrusting agent: %+v", st)
	}
}
