package rfm

import (
	"fmt"
	"strings"
)

// Scores are a customer's recency, frequency and monetary quintiles, each
// 1 (the lowest fifth of customers) to 5 (the highest).
type Scores struct {
	R int `json:"r"`
	F int `json:"f"`
	M int `json:"m"`
}

// FM is the frequency and monetary scores taken together, their mean
// rounded half up: the column of the segment table.
func (s Scores) FM() int { return (s.F + s.M + 1) / 2 }

// String is the usual three-digit code, "543".
func (s Scores) String() string { return fmt.Sprintf("%d%d%d", s.R, s.F, s.M) }

// Segment is a named group of customers, by their R and FM scores.
type Segment string

// The segments, from the best customers to those gone.
const (
	Champions          Segment = "champions"
	LoyalCustomers     Segment = "loyal_customers"
	PotentialLoyalists Segment = "potential_loyalists"
	NewCustomers       Segment = "new_customers"
	Promising          Segment = "promising"
	NeedAttention      Segment = "need_attention"
	AboutToSleep       Segment = "about_to_sleep"
	AtRisk             Segment = "at_risk"
	CantLoseThem       Segment = "cant_lose_them"
	Hibernating        Segment = "hibernating"
	Lost               Segment = "lost"
)

// Segments lists every segment in the order pages show them.
var Segments = []Segment{Champions, LoyalCustomers, PotentialLoyalists, NewCustomers, Promising,
	NeedAttention, AboutToSleep, AtRisk, CantLoseThem, Hibernating, Lost}

// Title is the segment's name for people: "Can't lose them".
func (s Segment) Title() string {
	if s == CantLoseThem {
		return "Can't lose them"
	}
	t := strings.ReplaceAll(string(s), "_", " ")
	return strings.ToUpper(t[:1]) + t[1:]
}

// segmentTable is the rule table, rows R = 5 down to 1, columns FM = 1 to
// 5. The package documentation shows it; a test keeps the two the same.
var segmentTable = [5][5]Segment{
	{NewCustomers, PotentialLoyalists, PotentialLoyalists, Champions, Champions},   // R 5
	{Promising, PotentialLoyalists, PotentialLoyalists, LoyalCustomers, Champions}, // R 4
	{AboutToSleep, AboutToSleep, NeedAttention, LoyalCustomers, LoyalCustomers},    // R 3
	{Hibernating, Hibernating, AtRisk, AtRisk, CantLoseThem},                       // R 2
	{Lost, Hibernating, AtRisk, CantLoseThem, CantLoseThem},                        // R 1
}

// SegmentOf is the segment the table gives scores s; scores outside 1..5
// are clamped.
func SegmentOf(s Scores) Segment {
	r := min(max(s.R, 1), 5)
	fm := min(max(Scores{F: min(max(s.F, 1), 5), M: min(max(s.M, 1), 5)}.FM(), 1), 5)
	return segmentTable[5-r][fm-1]
}

// renderTable writes the rule table as the package documentation shows it.
func renderTable() []string {
	pad := func(s string, w int) string { return s + strings.Repeat(" ", max(w-len(s), 1)) }
	head := pad("R \\ FM", 8)
	for fm := 1; fm <= 5; fm++ {
		head += pad(fmt.Sprint(fm), 21)
	}
	lines := []string{strings.TrimRight(head, " ")}
	for i, row := range segmentTable {
		line := pad(fmt.Sprint(5-i), 8)
		for _, s := range row {
			line += pad(s.Title(), 21)
		}
		lines = append(lines, strings.TrimRight(line, " "))
	}
	return lines
}
