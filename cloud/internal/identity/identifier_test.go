package identity

import (
	"errors"
	"slices"
	"testing"
)

// Ensure that e-mail addresses are lower-cased everywhere and that only
// the documented providers' dot and plus rules are applied.
func TestNormalize_Email(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"a@b.example", "a@b.example"},
		{"  Joe.Bloggs@Example.Test ", "joe.bloggs@example.test"},
		// Gmail: dots and +tags dropped, googlemail is gmail.
		{"J.O.E.Bloggs+shop@gmail.com", "joebloggs@gmail.com"},
		{"joe.bloggs@GoogleMail.com", "joebloggs@gmail.com"},
		{"joebloggs@gmail.com.", "joebloggs@gmail.com"},
		// Microsoft, Apple, Fastmail, Proton: +tags only; dots are kept.
		{"joe.bloggs+news@outlook.com", "joe.bloggs@outlook.com"},
		{"joe.bloggs+news@hotmail.com", "joe.bloggs@hotmail.com"},
		{"joe.bloggs+x@icloud.com", "joe.bloggs@icloud.com"},
		{"joe+x@me.com", "joe@me.com"},
		{"joe.b+x@fastmail.com", "joe.b@fastmail.com"},
		{"joe.b+x@proton.me", "joe.b@proton.me"},
		// Every other domain keeps its local part as typed.
		{"joe.bloggs+x@yahoo.com", "joe.bloggs+x@yahoo.com"},
		{"joe.bloggs+x@corp.example", "joe.bloggs+x@corp.example"},
		{"joe-bloggs@gmail.com", "joe-bloggs@gmail.com"},
		// Internationalised addresses are lower-cased as text.
		{"Jörg@Müller.example", "jörg@müller.example"},
		{"user@xn--mller-kva.example", "user@xn--mller-kva.example"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			id, err := Normalize(Email, tt.raw, "")
			if err != nil || id.Value != tt.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", tt.raw, id.Value, err, tt.want)
			}
		})
	}
}

// Ensure that malformed addresses are refused rather than guessed at.
func TestNormalize_EmailInvalid(t *testing.T) {
	for _, raw := range []string{
		"", "   ", "joe", "joe@", "@gmail.com", "joe@localhost", "joe@@gmail.com.x", ".joe@x.example",
		"joe.@x.example", "jo..e@x.example", `"joe"@x.example`, "jo e@x.example", "joe@-x.example",
		"joe@x-.example", "joe@[192.0.2.1]", "joe@192.0.2.1", "joe@x..example", "+tag@gmail.com",
		"...@gmail.com", "joe@x.example\x00", "\xff@x.example",
	} {
		if id, err := Normalize(Email, raw, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", raw, id.Value, err)
		}
	}
}

// Ensure that phone numbers come out in E.164 whatever way they were
// typed, with the region for numbers without a country code.
func TestNormalize_Phone(t *testing.T) {
	tests := []struct {
		raw, region, want string
	}{
		{"+821012345678", "", "+821012345678"},
		{"010-1234-5678", "KR", "+821012345678"},
		{"+82 10 1234 5678", "GB", "+821012345678"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"020 7946 0958", "gb", "+442079460958"},
		{"0044 20 7946 0958", "FR", "+442079460958"},
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"(202) 456-1414", "US", "+12024561414"},
		{"0049 30 123456", "DE", "+4930123456"},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.region, func(t *testing.T) {
			id, err := Normalize(Phone, tt.raw, tt.region)
			if err != nil || id.Value != tt.want {
				t.Fatalf("Normalize(%q, %q) = %q, %v; want %q", tt.raw, tt.region, id.Value, err, tt.want)
			}
		})
	}
	for _, c := range [][2]string{
		{"", "GB"}, {"07946 0958", ""}, {"12345", "GB"}, {"+999123", ""}, {"not a number", "GB"},
		{"07700 900123", "GB"}, // Ofcom's range for drama: no shopper has one
	} {
		if id, err := Normalize(Phone, c[0], c[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q, %q) = %q, %v; want ErrInvalid", c[0], c[1], id.Value, err)
		}
	}
}

// Ensure that loyalty cards, accounts and app installs are trimmed and
// checked: cards ignore case and print spacing, the opaque ids keep case.
func TestNormalize_Tokens(t *testing.T) {
	tests := []struct {
		t         Type
		raw, want string
	}{
		{Loyalty, " lc-1 ", "LC-1"},
		{Loyalty, "6001 2345 6789", "600123456789"},
		{Account, " W-1\t", "W-1"},
		{Account, "Ab:cD", "Ab:cD"},
		{App, "F3B2C1D0-1111-4A4A-8B8B-123456789ABC", "F3B2C1D0-1111-4A4A-8B8B-123456789ABC"},
	}
	for _, tt := range tests {
		id, err := Normalize(tt.t, tt.raw, "")
		if err != nil || id.Value != tt.want {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q", tt.t, tt.raw, id.Value, err, tt.want)
		}
	}
	for _, c := range []struct {
		t   Type
		raw string
	}{
		{Loyalty, ""}, {Loyalty, "LC#1"}, {Loyalty, "ÄB"}, {Account, "a b"}, {Account, ""},
		{App, "é"}, {App, string(make([]byte, MaxOpaqueLen+1))}, {Loyalty, "12345678901234567890123456789012345678901234567890123456789012345"},
	} {
		if id, err := Normalize(c.t, c.raw, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%s, %q) = %q, %v; want ErrInvalid", c.t, c.raw, id.Value, err)
		}
	}
	if _, err := Normalize("fax", "1", ""); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}

// Ensure that Parse reads the type:value form and ParseSet the identify
// body, naming the key that failed.
func TestParse(t *testing.T) {
	id, err := Parse("email:Joe@X.example", "")
	if err != nil || id != (Identifier{Email, "joe@x.example"}) || id.String() != "email:joe@x.example" {
		t.Fatalf("Parse = %v, %v", id, err)
	}
	if id, err := Parse("account:W:1", ""); err != nil || id.Value != "W:1" {
		t.Fatalf("Parse with a colon in the value = %v, %v", id, err)
	}
	if _, err := Parse("joe@x.example", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse without a type: %v", err)
	}
	set, err := ParseSet(map[string]string{"email": "a@b.example", "loyalty": "lc-1", "account": "W-1", "phone": "+821012345678"}, "")
	want := []Identifier{{Account, "W-1"}, {Loyalty, "LC-1"}, {Phone, "+821012345678"}, {Email, "a@b.example"}}
	if err != nil || !slices.Equal(set, want) {
		t.Fatalf("ParseSet = %v, %v", set, err)
	}
	var ke *KeyError
	if _, err := ParseSet(map[string]string{"email": "a@b.example", "fax": "1"}, ""); !errors.As(err, &ke) || ke.Key != "fax" || !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := ParseSet(map[string]string{"phone": "12"}, "GB"); !errors.As(err, &ke) || ke.Key != "phone" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad phone: %v", err)
	}
}

// Ensure that the built-in placeholders and the configured values are
// blocked and real-looking identifiers are not.
func TestPolicy_Blocked(t *testing.T) {
	p, err := Policy{Blocklist: map[Type][]string{
		App:     {"kiosk-tablet-7"},
		Loyalty: {"house 0001"},
		Email:   {"Shop@Retailer.example"},
		Phone:   {"+44 20 7946 0000"},
	}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	blocked := []Identifier{
		{App, "kiosk-tablet-7"}, {Loyalty, "HOUSE0001"}, {Email, "shop@retailer.example"}, {Phone, "+442079460000"},
		{Loyalty, "NULL"}, {Loyalty, "-1"}, {Loyalty, "0"}, {Loyalty, "0000000"}, {Loyalty, "N/A"}, {Loyalty, "---"},
		{Account, "anonymous"}, {Account, "Guest"}, {Account, "undefined"}, {App, "00000000-0000-0000-0000-000000000000"},
		{Email, "test@test.com"}, {Email, "noreply@shop.example"}, {Email, "joe@example.com"}, {Email, "joe@mail.invalid"},
		{Email, "xxx@gmail.com"}, {Email, "none@x.example"},
		{Phone, "+11111111111"}, {Phone, "+12345678901"}, {Phone, "+12025550123"}, {Phone, "+449876543210"},
	}
	for _, id := range blocked {
		if !p.Blocked(id) {
			t.Errorf("%v not blocked", id)
		}
	}
	kept := []Identifier{
		{App, "kiosk-tablet-8"}, {Loyalty, "LC-1"}, {Loyalty, "600123456789"}, {Account, "W-1"},
		{Email, "a@b.example"}, {Email, "joe@gmail.com"}, {Email, "ab@x.example"},
		{Phone, "+821012345678"}, {Phone, "+442079460958"}, {Phone, "+12025550200"}, {Phone, "+12024561414"},
	}
	for _, id := range kept {
		if p.Blocked(id) {
			t.Errorf("%v blocked", id)
		}
	}
	if DefaultPolicy().Blocked(Identifier{App, "kiosk-tablet-7"}) {
		t.Error("the default policy blocks a configured value")
	}
}

// Ensure that the policy refuses what it cannot apply and stores equal
// policies alike.
func TestPolicy_Normalize(t *testing.T) {
	for _, p := range []Policy{
		{Max: map[Type]int{Email: 0}},
		{Max: map[Type]int{"fax": 1}},
		{Blocklist: map[Type][]string{"fax": {"1"}}},
		{Blocklist: map[Type][]string{Phone: {"020 7946 0000"}}}, // no country code
		{Blocklist: map[Type][]string{Email: {"nope"}}},
	} {
		if _, err := p.Normalize(); !errors.Is(err, ErrPolicy) {
			t.Errorf("Normalize(%+v) = %v, want ErrPolicy", p, err)
		}
	}
	a, _ := Policy{Blocklist: map[Type][]string{Loyalty: {"b", "a", "A "}}}.Normalize()
	if !slices.Equal(a.Blocklist[Loyalty], []string{"A", "B"}) || a.MaxOf(Email) != 5 || a.MaxOf(Loyalty) != 1 {
		t.Fatalf("Normalize = %+v", a)
	}
	b, _ := Policy{Max: map[Type]int{Email: 2}}.Normalize()
	if b.MaxOf(Email) != 2 || b.MaxOf(Phone) != 3 {
		t.Fatalf("MaxOf = %d %d", b.MaxOf(Email), b.MaxOf(Phone))
	}
}

// Ensure that Subject picks the strongest identifier that is not blocked.
func TestPolicy_Subject(t *testing.T) {
	p := DefaultPolicy()
	ids := []Identifier{{Email, "a@b.example"}, {Loyalty, "NULL"}, {Phone, "+821012345678"}, {App, "i-1"}}
	if s, ok := p.Subject(ids); !ok || s != (Identifier{Phone, "+821012345678"}) {
		t.Fatalf("Subject = %v %v", s, ok)
	}
	if _, ok := p.Subject([]Identifier{{Loyalty, "NULL"}}); ok {
		t.Fatal("Subject of only blocked identifiers")
	}
}

// Ensure that normalising is idempotent: a normalised value normalises
// to itself, so stored values can be re-read.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"J.O.E+x@GoogleMail.com", "010-1234-5678", "lc-1 ", "W-1", "Jörg@Müller.example", "+442079460958"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, typ := range types {
			id, err := Normalize(typ, raw, "KR")
			if err != nil {
				continue
			}
			again, err := Normalize(typ, id.Value, "")
			if err != nil || again != id {
				t.Fatalf("%s: %q -> %q -> %q, %v", typ, raw, id.Value, again.Value, err)
			}
			_ = DefaultPolicy().Blocked(id)
		}
	})
}
