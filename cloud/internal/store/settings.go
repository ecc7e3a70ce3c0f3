package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/omnisync/omnisync/cloud/internal/reviews"
)

// The hub's shared settings live in hub_settings, one row each, so that
// every replica decides the same way: a replica reads a setting in the
// transaction that uses it, and caches what it parsed by version.
const (
	settingReviewPolicy   = "reviews.policy"
	settingOnlineLocation = "inventory.online"
)

// ErrSettingMismatch is returned when a replica's configuration disagrees
// with a setting the chain has stored: replicas applying events by
// different rules would keep different books.
var ErrSettingMismatch = errors.New("store: configuration disagrees with the chain's stored setting")

// SetOnlineLocation makes name the online channel's location in the
// inventory rules (inventory.Rules.Online). The first hub of a chain stores
// it; a later one configured otherwise gets ErrSettingMismatch and must
// not apply events. Call it before applying.
func (s *Store) SetOnlineLocation(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty online location", ErrInvalid)
	}
	err := s.retry(ctx, "set online location", func() error {
		_, err := s.w.ExecContext(ctx, `INSERT INTO hub_settings (name, value, version, updated_ms) VALUES ($1, $2, 1, $3)
ON CONFLICT (name) DO NOTHING`, settingOnlineLocation, name, s.now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: online location: %w", err)
	}
	v, _, _, err := readSetting(ctx, s.w, settingOnlineLocation)
	if err != nil {
		return err
	}
	if v != name {
		return fmt.Errorf("%w: the online location is %q, this hub is configured with %q", ErrSettingMismatch, v, name)
	}
	s.rules.Online = name
	return nil
}

type settingsCache struct {
	mu            sync.Mutex
	screenerVer   int64
	screener      *reviews.Screener
	defaultScreen *reviews.Screener
	defaultOnce   sync.Once
}

// readSetting returns a setting's value and version; ok is false when it
// was never stored.
func readSetting(ctx context.Context, q querier, name string) (value string, version int64, ok bool, err error) {
	rows, err := q.QueryContext(ctx, "SELECT value, version FROM hub_settings WHERE name = $1", name)
	if err != nil {
		return "", 0, false, fmt.Errorf("read setting %s: %w", name, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&value, &version); err != nil {
			return "", 0, false, err
		}
		ok = true
	}
	return value, version, ok, rows.Err()
}

// writeSetting stores a setting, growing its version.
func (s *Store) writeSetting(ctx context.Context, db execer, name, value string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO hub_settings (name, value, version, updated_ms) VALUES ($1, $2, 1, $3)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, version = hub_settings.version + 1, updated_ms = excluded.updated_ms`,
		name, value, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store: write setting %s: %w", name, err)
	}
	return nil
}

// ReviewPolicy returns the stored review moderation policy (the default
// one when HQ has stored none).
func (s *Store) ReviewPolicy(ctx context.Context) (reviews.Policy, error) {
	v, _, ok, err := readSetting(ctx, s.r, settingReviewPolicy)
	if err != nil || !ok {
		return reviews.DefaultPolicy(), err
	}
	var p reviews.Policy
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return p, fmt.Errorf("store: stored review policy: %w", err)
	}
	return p, nil
}

// SetReviewPolicy stores the review moderation policy every replica
// applies from then on. Reviews already stored keep their status.
func (s *Store) SetReviewPolicy(ctx context.Context, p reviews.Policy) error {
	p, err := p.Normalize()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.retry(ctx, "set review policy", func() error {
		return s.writeSetting(ctx, s.w, settingReviewPolicy, string(b))
	})
}

// reviewScreener returns the screener of the policy stored as of q's
// snapshot.
func (s *Store) reviewScreener(ctx context.Context, q querier) (*reviews.Screener, error) {
	v, ver, ok, err := readSetting(ctx, q, settingReviewPolicy)
	if err != nil {
		return nil, err
	}
	c := &s.settings
	if !ok {
		c.defaultOnce.Do(func() { c.defaultScreen = reviews.NewScreener(reviews.DefaultPolicy()) })
		return c.defaultScreen, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.screener != nil && c.screenerVer == ver {
		return c.screener, nil
	}
	var p reviews.Policy
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, errors.Join(fmt.Errorf("stored review policy (version %d) does not parse", ver), err)
	}
	c.screener, c.screenerVer = reviews.NewScreener(p), ver
	return c.screener, nil
}
