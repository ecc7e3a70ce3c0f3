package natsauth

import "testing"

// Ensure that each setting given becomes one option and a certificate
// needs its key.
func TestSettings(t *testing.T) {
	cases := []struct {
		name    string
		s       Settings
		opts    int
		invalid bool
	}{
		{"nothing", Settings{}, 0, false},
		{"creds", Settings{Creds: "store.creds"}, 1, false},
		{"tls", Settings{CA: "ca.pem"}, 1, false},
		{"mutual tls", Settings{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}, 2, false},
		{"cert without key", Settings{Cert: "c.pem"}, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := len(c.s.Options()); got != c.opts {
				t.Errorf("%d options, want %d", got, c.opts)
			}
			if err := c.s.Validate(); (err != nil) != c.invalid {
				t.Errorf("Validate() = %v, want invalid %v", err, c.invalid)
			}
		})
	}
}
