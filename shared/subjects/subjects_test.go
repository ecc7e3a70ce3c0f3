package subjects

import "testing"

func TestParseEvent(t *testing.T) {
	tests := []struct {
		subject       string
		store, device string
		ok            bool
	}{
		{Event("S1", "pos-1"), "S1", "pos-1", true},
		{"omni.ev.S1", "", "", false},
		{"omni.ev.S1.pos.1", "", "", false},
		{"omni.ev..pos", "", "", false},
		{"other.S1.pos", "", "", false},
	}
	for _, tt := range tests {
		s, d, ok := ParseEvent(tt.subject)
		if s != tt.store || d != tt.device || ok != tt.ok {
			t.Errorf("ParseEvent(%q) = %q, %q, %v", tt.subject, s, d, ok)
		}
	}
	if s, d, ok := ParseHubSync(HubSync("S2", "k")); !ok || s != "S2" || d != "k" {
		t.Errorf("ParseHubSync round trip failed")
	}
}

func TestParseCust(t *testing.T) {
	if s, op, ok := ParseCust(Cust("S1", CustCard)); !ok || s != "S1" || op != CustCard {
		t.Errorf("ParseCust round trip: %q %q %v", s, op, ok)
	}
	for _, bad := range []string{"omni.hub.cust.S1", "omni.hub.cust.S1.card.x", "omni.hub.cust..card", "omni.hub.sync.S1.card"} {
		if _, _, ok := ParseCust(bad); ok {
			t.Errorf("ParseCust(%q) accepted", bad)
		}
	}
	if CustAllOf(CustCard) != "omni.hub.cust.*.card" || CustStore("S1") != "omni.hub.cust.S1.>" {
		t.Error("wildcards")
	}
}

// Ensure that every staff queue subject of a store is inside the space its
// credentials are given, and that a reply subject is found by its prefix.
func TestStaffSubjects(t *testing.T) {
	space := StaffStore("S1")
	prefix := space[:len(space)-1]
	for _, s := range []string{StaffChanges("S1"), StaffSync("S1"), StaffReply("S1", "abc")} {
		if len(s) <= len(prefix) || s[:len(prefix)] != prefix {
			t.Errorf("%s is outside %s", s, space)
		}
	}
	if r := StaffReply("S1", ""); StaffReply("S1", "abc")[:len(r)] != r {
		t.Errorf("reply prefix %s", r)
	}
	if StaffAll != "omni.staff.>" || StaffStore("S2") == space {
		t.Error("wildcards")
	}
}
