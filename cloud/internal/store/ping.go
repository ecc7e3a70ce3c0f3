package store

import "context"

// Ping checks that the database answers a write-path round trip; the hub's
// /healthz and ingest's "is it the event or the database?" test use it.
func (s *Store) Ping(ctx context.Context) error {
	return s.w.PingContext(ctx)
}
