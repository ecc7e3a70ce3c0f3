// Package reviews holds the hub's rules for shoppers' product reviews:
// which review a kiosk session keeps when it sends several, and what the
// moderation policy does with a new one. It is pure (no SQL, no clock, no
// I/O), so every hub replica, given the same stored policy and the same
// events in any order, keeps the same reviews with the same status.
//
// The policy is part of the hub's shared, stored configuration, never a
// per-replica setting: two replicas applying batches at the same time must
// not decide differently about the same review.
package reviews

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/omnisync/omnisync/shared/events"
)

// Statuses of a stored review.
const (
	// Published reviews are shown to shoppers.
	Published = "published"
	// Pending reviews wait for a moderator.
	Pending = "pending"
	// Rejected reviews are kept for moderators only (blocked words, or a
	// moderator's decision).
	Rejected = "rejected"
)

// DefaultBlockedWords is the list a hub starts with until HQ stores its
// own. Matching is by whole word, ignoring case.
var DefaultBlockedWords = []string{"fuck", "fucking", "shit", "cunt", "bitch", "bastard", "asshole", "nigger", "faggot", "retard", "viagra", "casino"}

// MaxBlockedWords bounds the list, which every review is checked against.
const MaxBlockedWords = 10000

// Policy is the moderation policy.
type Policy struct {
	// BlockedWords keep a review from being published: it is rejected,
	// with the word as the reason, and kept for moderators.
	BlockedWords []string `json:"blocked_words"`
	// AutoPublish publishes a review that passes the blocked words at once;
	// without it, such a review waits for a moderator (Pending).
	AutoPublish bool `json:"auto_publish"`
}

// DefaultPolicy is the policy of a hub whose HQ has stored none: reviews
// without a blocked word wait for a moderator.
func DefaultPolicy() Policy {
	return Policy{BlockedWords: slices.Clone(DefaultBlockedWords)}
}

// Normalize returns p with its words lower-cased, trimmed, deduplicated
// and sorted, so that equal policies are stored as equal bytes. It
// rejects a word that could never match (it holds a character that is
// not a letter or digit, so the tokenizer splits on it) and an overlong
// list.
func (p Policy) Normalize() (Policy, error) {
	if len(p.BlockedWords) > MaxBlockedWords {
		return p, fmt.Errorf("reviews: %d blocked words, at most %d", len(p.BlockedWords), MaxBlockedWords)
	}
	out := make([]string, 0, len(p.BlockedWords))
	for _, w := range p.BlockedWords {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" {
			continue
		}
		if strings.IndexFunc(w, isSeparator) >= 0 {
			return p, fmt.Errorf("reviews: blocked word %q is not one word (letters and digits only)", w)
		}
		out = append(out, w)
	}
	slices.Sort(out)
	p.BlockedWords = slices.Compact(out)
	return p, nil
}

func isSeparator(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) }

// Screener applies a policy to new reviews. Build it once per policy.
type Screener struct {
	blocked     map[string]bool
	autoPublish bool
}

// NewScreener returns the screener of p.
func NewScreener(p Policy) *Screener {
	s := &Screener{blocked: make(map[string]bool, len(p.BlockedWords)), autoPublish: p.AutoPublish}
	for _, w := range p.BlockedWords {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			s.blocked[w] = true
		}
	}
	return s
}

// Screen returns the status a new review gets and, for a rejected one, why.
func (s *Screener) Screen(r events.Review) (status, reason string) {
	for _, f := range []string{r.Title, r.Text, r.Nickname} {
		for _, w := range strings.FieldsFunc(strings.ToLower(f), isSeparator) {
			if s.blocked[w] {
				return Rejected, fmt.Sprintf("blocked word %q", w)
			}
		}
	}
	if s.autoPublish {
		return Published, ""
	}
	return Pending, ""
}

// Key names the one review a kiosk session may leave on a product.
type Key struct {
	Product, Store, Device, Session string
}

// Compare orders keys field by field, bytewise: the order the store writes
// (and on PostgreSQL locks) review rows in.
func (k Key) Compare(o Key) int {
	for _, c := range [...]int{
		strings.Compare(k.Product, o.Product), strings.Compare(k.Store, o.Store),
		strings.Compare(k.Device, o.Device), strings.Compare(k.Session, o.Session),
	} {
		if c != 0 {
			return c
		}
	}
	return 0
}

// KeyOf returns the key of review r sent by env's origin.
func KeyOf(env *events.Envelope, r events.Review) Key {
	return Key{Product: r.ProductID, Store: env.Origin.Store, Device: env.Origin.Device, Session: r.Session}
}

// Stamp orders the reviews competing for one key: the earliest (packed
// HLC, then event id) is the one kept, whatever order they arrive in, so
// a shopper's first word stands and a replayed or late duplicate changes
// nothing.
type Stamp struct {
	HLC     int64
	EventID string
}

// Before reports whether a is kept over b.
func (a Stamp) Before(b Stamp) bool {
	return a.HLC < b.HLC || a.HLC == b.HLC && a.EventID < b.EventID
}

// Action is a moderator's decision on a review.
type Action string

// Moderator actions.
const (
	// Approve publishes a pending or rejected review.
	Approve Action = "approve"
	// Reject keeps a pending review from shoppers.
	Reject Action = "reject"
	// Unpublish takes a published review down (it is then rejected, and
	// may be approved again).
	Unpublish Action = "unpublish"
)

// ErrTransition is returned (wrapped) for an action a review's status
// does not allow.
var ErrTransition = errors.New("reviews: action not allowed in this status")

// Moderate returns the status a review in status gets from action.
func Moderate(status string, action Action) (string, error) {
	switch {
	case action == Approve && (status == Pending || status == Rejected):
		return Published, nil
	case action == Reject && status == Pending:
		return Rejected, nil
	case action == Unpublish && status == Published:
		return Rejected, nil
	case action != Approve && action != Reject && action != Unpublish:
		return "", fmt.Errorf("%w: unknown action %q (approve, reject, unpublish)", ErrTransition, action)
	}
	return "", fmt.Errorf("%w: cannot %s a %s review", ErrTransition, action, status)
}
