package consent

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

func st(wall int64, id string) events.Stamp {
	return events.Stamp{HLC: hlc.Timestamp{Wall: wall}, ID: id}
}

func dec(p Purpose, c Channel, s Status, wall int64, id string) Decision {
	return Decision{Purpose: p, Channel: c, Status: s, Stamp: st(wall, id), Evidence: Evidence{Store: "S1", Device: "kiosk-1", Source: "kiosk", TextVersion: "v3"}}
}

func ms(n int64) time.Time { return time.UnixMilli(n) }

// Ensure that the story holds: an opt-out at store B's kiosk holds
// on every channel, at store A too, until a newer grant reopens a channel.
func TestMay_OptOutHoldsEverywhere(t *testing.T) {
	var s State
	s.Add(dec(MarketingEmail, AllChannels, Granted, 100, "e1")) // at the till, store A
	for _, c := range Channels() {
		if a := s.May(MarketingEmail, c, ms(150)); !a.Allowed || a.Reason != ReasonGranted {
			t.Fatalf("before the opt-out, %s: %+v", c, a)
		}
	}
	s.Add(dec(MarketingEmail, ChannelStore, Denied, 200, "e2")) // at store B's kiosk
	for _, c := range append(Channels(), AllChannels) {
		a := s.May(MarketingEmail, c, ms(250))
		if a.Allowed || a.Reason != ReasonOptedOut || a.Decision.Stamp.ID != "e2" {
			t.Fatalf("after the opt-out, %q: %+v", c, a)
		}
	}
	// Another purpose is untouched.
	if a := s.May(SMS, ChannelSMS, ms(250)); a.Allowed || a.Reason != ReasonNoDecision || a.Decision != nil {
		t.Fatalf("sms: %+v", a)
	}
	// A newer web-only grant reopens the web, nothing else.
	s.Add(dec(MarketingEmail, ChannelWeb, Granted, 300, "e3"))
	if a := s.May(MarketingEmail, ChannelWeb, ms(350)); !a.Allowed {
		t.Fatalf("web after the web grant: %+v", a)
	}
	if a := s.May(MarketingEmail, ChannelEmail, ms(350)); a.Allowed {
		t.Fatalf("email after a web-only grant: %+v", a)
	}
	// A late copy of the old grant changes nothing.
	if s.Add(dec(MarketingEmail, AllChannels, Granted, 100, "e1")) {
		t.Fatal("a duplicate changed the state")
	}
}

// Ensure that a grant lapses at its expiry and an older grant does not
// come back.
func TestMay_Expiry(t *testing.T) {
	var s State
	s.Add(dec(Analytics, AllChannels, Granted, 100, "e1"))
	g := dec(Analytics, ChannelWeb, Granted, 200, "e2")
	g.Expires = 1000
	s.Add(g)
	if a := s.May(Analytics, ChannelWeb, ms(999)); !a.Allowed {
		t.Fatalf("before expiry: %+v", a)
	}
	if a := s.May(Analytics, ChannelWeb, ms(1000)); a.Allowed || a.Reason != ReasonExpired {
		t.Fatalf("at expiry: %+v", a)
	}
	if a := s.May(Analytics, ChannelStore, ms(1000)); !a.Allowed {
		t.Fatalf("another channel under the all-channel grant: %+v", a)
	}
}

// Ensure that on an exact tie an opt-out wins.
func TestMay_TieGoesToOptOut(t *testing.T) {
	for _, order := range [][]Decision{
		{dec(Push, AllChannels, Granted, 100, "e1"), dec(Push, ChannelApp, Revoked, 100, "e1")},
		{dec(Push, ChannelApp, Revoked, 100, "e1"), dec(Push, AllChannels, Granted, 100, "e1")},
	} {
		var s State
		for _, d := range order {
			s.Add(d)
		}
		if a := s.May(Push, ChannelApp, ms(200)); a.Allowed {
			t.Fatalf("%+v", a)
		}
	}
}

// Ensure that invalid decisions are refused.
func TestDecision_Validate(t *testing.T) {
	good := dec(SMS, ChannelSMS, Granted, 1, "e1")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(d *Decision){
		func(d *Decision) { d.Purpose = "spam" },
		func(d *Decision) { d.Channel = "fax" },
		func(d *Decision) { d.Status = "maybe" },
		func(d *Decision) { d.Stamp = events.Stamp{} },
		func(d *Decision) { d.Status, d.Expires = Denied, 10 },
		func(d *Decision) { d.Expires = -1 },
		func(d *Decision) { d.Evidence.TextVersion = string(make([]byte, MaxTextLen+1)) },
	}
	for i, f := range bad {
		d := good
		f(&d)
		if err := d.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

// Ensure that the event's status reads from "status" or "granted".
func TestParseStatus(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		granted *bool
		status  string
		want    Status
	}{
		{&no, "", Denied}, {&yes, "", Granted}, {nil, "Revoked", Revoked}, {&no, "revoked", Revoked}, {&yes, "granted", Granted},
	} {
		if got, err := ParseStatus(tt.granted, tt.status); err != nil || got != tt.want {
			t.Errorf("ParseStatus(%v, %q) = %q, %v", tt.granted, tt.status, got, err)
		}
	}
	for _, tt := range []struct {
		granted *bool
		status  string
	}{{nil, ""}, {nil, "maybe"}, {&yes, "denied"}, {&no, "granted"}} {
		if _, err := ParseStatus(tt.granted, tt.status); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseStatus(%v, %q) = %v", tt.granted, tt.status, err)
		}
	}
}

// oracle answers May from the whole list of decisions, by the rule as
// written: the newest applicable decision decides.
func oracle(ds []Decision, p Purpose, c Channel, at time.Time) Answer {
	var best *Decision
	for _, d := range ds {
		if d.Purpose != p || !d.OptOut() && d.Channel != AllChannels && d.Channel != c {
			continue
		}
		newer := best == nil
		if !newer {
			if cmp := d.Stamp.Compare(best.Stamp); cmp != 0 {
				newer = cmp > 0
			} else {
				newer = d.newer(*best)
			}
		}
		if newer {
			best = &d
		}
	}
	return decide(best, at)
}

func randomDecision(rng *rand.Rand) Decision {
	statuses := []Status{Granted, Granted, Denied, Revoked}
	chans := append(Channels(), AllChannels, AllChannels)
	d := Decision{
		Purpose: purposes[rng.Intn(2)],
		Channel: chans[rng.Intn(len(chans))],
		Status:  statuses[rng.Intn(len(statuses))],
		Stamp:   st(int64(1+rng.Intn(30)), fmt.Sprintf("e%02d", rng.Intn(40))),
		Evidence: Evidence{
			Store: fmt.Sprintf("S%d", rng.Intn(3)), TextVersion: fmt.Sprintf("v%d", rng.Intn(2)),
		},
	}
	if d.Status == Granted && rng.Intn(3) == 0 {
		d.Expires = int64(rng.Intn(40))
	}
	return d
}

// Ensure that any order, duplication and grouping of decisions by subject
// gives the answers of the oracle, for every purpose, channel and time.
func TestState_AnyOrderMatchesOracle(t *testing.T) {
	for seed := int64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewSource(seed))
		var log []Decision
		subject := map[int]int{}
		for i := range 1 + rng.Intn(30) {
			log = append(log, randomDecision(rng))
			subject[i] = rng.Intn(3)
		}
		var want []Decision
		for run := range 5 {
			idx := make([]int, len(log))
			for i := range idx {
				idx[i] = i
			}
			for i := range log {
				if rng.Intn(3) == 0 {
					idx = append(idx, i)
				}
			}
			rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			var whole State
			parts := make([]State, 3)
			for _, i := range idx {
				whole.Add(log[i])
				parts[subject[i]].Add(log[i])
			}
			rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
			joined := Join(Join(parts[0], parts[1]), parts[2])
			if run == 0 {
				want = whole.Decisions()
			}
			for _, s := range []State{whole, joined} {
				if got := s.Decisions(); !slices.Equal(got, want) {
					t.Fatalf("seed %d run %d: kept decisions differ:\n got %v\nwant %v", seed, run, got, want)
				}
				for _, p := range purposes[:2] {
					for _, c := range append(Channels(), AllChannels) {
						for at := int64(0); at <= 40; at += 8 {
							got, exp := s.May(p, c, ms(at)), oracle(log, p, c, ms(at))
							if got.Allowed != exp.Allowed || got.Reason != exp.Reason || (got.Decision == nil) != (exp.Decision == nil) ||
								got.Decision != nil && *got.Decision != *exp.Decision {
								t.Fatalf("seed %d run %d: May(%s, %q, %d) = %+v, oracle %+v", seed, run, p, c, at, got, exp)
							}
						}
					}
				}
			}
		}
	}
}
