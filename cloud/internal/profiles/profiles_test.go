package profiles

import (
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

func ptr(s string) *string { return &s }

func st(wall int64, id string) events.Stamp {
	return events.Stamp{HLC: hlc.Timestamp{Wall: wall}, ID: id}
}

// Ensure that every field normalises what it accepts and refuses the rest.
func TestCheck(t *testing.T) {
	ok := []struct{ field, in, want string }{
		{"first_name", "  Ann ", "Ann"},
		{"last_name", "Müller-Lüdenscheidt", "Müller-Lüdenscheidt"},
		{"birth_date", "1990-02-28", "1990-02-28"},
		{"locale", "en_gb", "en-GB"},
		{"locale", "KO", "ko"},
		{"locale", "es-419", "es-419"},
		{"country", "kr", "KR"},
		{"postcode", "sw1a 1aa", "SW1A 1AA"},
		{"tier", "Gold", "Gold"},
		{"preferred_store", "S-12", "S-12"},
		{"x_shoe_size", " 42 ", "42"},
	}
	for _, tt := range ok {
		got, err := Check(tt.field, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Check(%s, %q) = %q, %v; want %q", tt.field, tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ field, in string }{
		{"birth_date", "1990-02-30"}, {"birth_date", "1899-12-31"}, {"birth_date", "28/02/1990"},
		{"locale", "english"}, {"locale", "en-GBR"}, {"country", "KOR"}, {"postcode", "SW1A#1AA"},
		{"first_name", "A\x00nn"}, {"first_name", string(make([]rune, 101))}, {"first_name", "\xff"},
		{"preferred_store", "S 1"}, {"tier", "a very long tier name beyond thirty-two"},
	}
	for _, tt := range bad {
		if got, err := Check(tt.field, tt.in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%s, %q) = %q, %v; want ErrInvalid", tt.field, tt.in, got, err)
		}
	}
	for _, name := range []string{"password", "x_", "x_Shoe", "x_" + string(make([]byte, 49))} {
		var fe *FieldError
		if _, err := Check(name, "1"); !errors.Is(err, ErrUnknownField) || !errors.As(err, &fe) || fe.Field != name {
			t.Errorf("Check(%q) = %v, want ErrUnknownField", name, err)
		}
	}
}

// Ensure that ParseUpdate normalises, keeps clears and names the field
// that failed.
func TestParseUpdate(t *testing.T) {
	u, err := ParseUpdate(st(1, "e1"), map[string]*string{"first_name": ptr(" Ann "), "postcode": nil})
	if err != nil || *u.Fields["first_name"] != "Ann" || u.Fields["postcode"] != nil || len(u.Fields) != 2 {
		t.Fatalf("ParseUpdate = %+v, %v", u, err)
	}
	var fe *FieldError
	if _, err := ParseUpdate(st(1, "e1"), map[string]*string{"country": ptr("Korea"), "zzz": nil}); !errors.As(err, &fe) || fe.Field != "country" {
		t.Fatalf("bad country: %v", err)
	}
	if _, err := ParseUpdate(st(1, "e1"), map[string]*string{"nope": nil}); !errors.Is(err, ErrUnknownField) {
		t.Fatalf("clearing an unknown field: %v", err)
	}
	many := map[string]*string{}
	for i := range MaxFields + 1 {
		many[fmt.Sprintf("x_f%d", i)] = nil
	}
	if _, err := ParseUpdate(st(1, "e1"), many); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too many fields: %v", err)
	}
}

// Ensure that the newest update wins per field, a clear included, and
// that an older update arriving late changes nothing.
func TestProfile_LastWriterWins(t *testing.T) {
	p := Profile{}
	if ch := p.Apply(Update{Stamp: st(200, "b"), Fields: map[string]*string{"first_name": ptr("Ann"), "tier": ptr("Gold")}}); !slices.Equal(ch, []string{"first_name", "tier"}) {
		t.Fatalf("changed %v", ch)
	}
	if ch := p.Apply(Update{Stamp: st(100, "a"), Fields: map[string]*string{"first_name": ptr("Anne"), "locale": ptr("en")}}); !slices.Equal(ch, []string{"locale"}) {
		t.Fatalf("a late older update changed %v", ch)
	}
	p.Apply(Update{Stamp: st(300, "c"), Fields: map[string]*string{"tier": nil}})
	if v, ok := p.Get("first_name"); !ok || v != "Ann" {
		t.Fatalf("first_name %q %v", v, ok)
	}
	if _, ok := p.Get("tier"); ok {
		t.Fatal("a cleared field has a value")
	}
	p.Apply(Update{Stamp: st(250, "x"), Fields: map[string]*string{"tier": ptr("Silver")}})
	if _, ok := p.Get("tier"); ok {
		t.Fatal("an update older than the clear brought the field back")
	}
	if got := p.Visible(); !maps.Equal(got, map[string]string{"first_name": "Ann", "locale": "en"}) {
		t.Fatalf("Visible = %v", got)
	}
}

// Ensure that any order, duplication and grouping of updates by subject
// gives the same profile as the oracle: per field, the update that beats
// every other.
func TestProfile_AnyOrder(t *testing.T) {
	names := []string{"first_name", "last_name", "tier", "x_a"}
	for seed := int64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewSource(seed))
		type subjUpdate struct {
			subject int
			u       Update
		}
		var log []subjUpdate
		for range 1 + rng.Intn(40) {
			u := Update{Stamp: st(int64(rng.Intn(20)), fmt.Sprintf("e%02d", rng.Intn(25))), Fields: map[string]*string{}}
			for range 1 + rng.Intn(3) {
				var v *string
				if rng.Intn(4) > 0 {
					v = ptr(fmt.Sprintf("v%d", rng.Intn(5)))
				}
				u.Fields[names[rng.Intn(len(names))]] = v
			}
			log = append(log, subjUpdate{subject: rng.Intn(4), u: u})
		}
		// The oracle.
		want := map[string]Value{}
		for _, e := range log {
			for name, v := range e.u.Fields {
				nv := Value{Stamp: e.u.Stamp, Cleared: v == nil}
				if v != nil {
					nv.Value = *v
				}
				if cur, ok := want[name]; !ok || nv.Beats(cur) {
					want[name] = nv
				}
			}
		}
		for run := range 5 {
			order := slices.Clone(log)
			for _, e := range log {
				if rng.Intn(3) == 0 {
					order = append(order, e)
				}
			}
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			whole := Profile{}
			bySubject := map[int]Profile{}
			for _, e := range order {
				whole.Apply(e.u)
				if bySubject[e.subject] == nil {
					bySubject[e.subject] = Profile{}
				}
				bySubject[e.subject].Apply(e.u)
			}
			var parts []Profile
			for _, p := range bySubject {
				parts = append(parts, p)
			}
			rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
			// Join in two random groups, then join the groups.
			k := rng.Intn(len(parts) + 1)
			joined := Join(Join(parts[:k]...), Join(parts[k:]...))
			for _, got := range []Profile{whole, joined} {
				if !maps.Equal(got, Profile(want)) {
					t.Fatalf("seed %d run %d:\n got %v\nwant %v", seed, run, got, want)
				}
			}
		}
	}
}

// Ensure that Beats is a strict total order on distinct values, so the
// winner never depends on order.
func TestValue_Beats(t *testing.T) {
	vals := []Value{
		{Stamp: st(1, "a"), Value: "x"}, {Stamp: st(1, "a"), Value: "y"}, {Stamp: st(1, "a"), Cleared: true},
		{Stamp: st(1, "b"), Value: "x"}, {Stamp: st(2, "a"), Cleared: true},
	}
	for _, a := range vals {
		if a.Beats(a) {
			t.Fatalf("%v beats itself", a)
		}
		for _, b := range vals {
			if a != b && a.Beats(b) == b.Beats(a) {
				t.Fatalf("%v and %v: Beats is not antisymmetric", a, b)
			}
		}
	}
}
