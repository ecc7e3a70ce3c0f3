package inventory

import (
	"fmt"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Confidence is how far HQ may trust a position's figure: the books are
// exact about the events they were told, but shrinkage, mis-scans and
// unrecorded moves drift a store's real shelf away from them between
// counts, and some counts are surer than others.
type Confidence string

// The levels, surest first.
const (
	// ConfidenceHigh: an RFID sweep within ConfidentFor. A sweep reads
	// every tag of the SKUs it counts, so it misses little.
	ConfidenceHigh Confidence = "high"
	// ConfidenceMediumHigh: a count by hand (manual, cycle, or of an
	// unknown method) within ConfidentFor. People miscount and skip a
	// shelf now and then: good, but not as good as a sweep.
	ConfidenceMediumHigh Confidence = "medium_high"
	// ConfidenceMedium: counted, by any method, longer ago, within
	// StaleAfter.
	ConfidenceMedium Confidence = "medium"
	// ConfidenceLow: counted longer ago, or never since stock arrived.
	ConfidenceLow Confidence = "low"
)

// Default ages of ConfidenceOf.
const (
	ConfidentFor = 7 * 24 * time.Hour
	StaleAfter   = 30 * 24 * time.Hour
)

// Rank orders the levels: 3 for high down to 0 for low (and for a level
// this build does not know).
func (c Confidence) Rank() int {
	switch c {
	case ConfidenceHigh:
		return 3
	case ConfidenceMediumHigh:
		return 2
	case ConfidenceMedium:
		return 1
	}
	return 0
}

// ConfidenceOf grades a position by how its last count was taken
// (events.CountMethods, "" unknown) and how long before now (countedAt
// zero: never counted). A count stamped in the future (a store's clock
// ahead) counts as just now.
func ConfidenceOf(method string, countedAt, now time.Time) Confidence {
	if countedAt.IsZero() {
		return ConfidenceLow
	}
	switch age := now.Sub(countedAt); {
	case age <= ConfidentFor && method == events.CountRFIDSweep:
		return ConfidenceHigh
	case age <= ConfidentFor:
		return ConfidenceMediumHigh
	case age <= StaleAfter:
		return ConfidenceMedium
	}
	return ConfidenceLow
}

// ParseConfidence checks a level's name ("" is ConfidenceLow: everything
// passes a minimum of low).
func ParseConfidence(s string) (Confidence, error) {
	switch c := Confidence(s); c {
	case "":
		return ConfidenceLow, nil
	case ConfidenceHigh, ConfidenceMediumHigh, ConfidenceMedium, ConfidenceLow:
		return c, nil
	}
	return "", fmt.Errorf("unknown confidence %q (high, medium_high, medium or low)", s)
}
