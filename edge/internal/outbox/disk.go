package outbox

import (
	"fmt"
	"log/slog"
	"time"
)

// diskCheckEvery bounds how often the committer asks the filesystem for its
// free space; in between it trusts the last answer.
const diskCheckEvery = 250 * time.Millisecond

// diskGuard refuses appends while the outbox's filesystem is short of
// space. It is owned by the committer goroutine.
type diskGuard struct {
	dir  string
	min  int64 // negative: disabled
	free func(dir string) (int64, error)
	log  *slog.Logger

	checked time.Time // monotonic
	avail   int64
	failing bool // the last statfs failed (logged once per failure streak)
}

// check returns an error wrapping ErrFull when free space is below min.
func (g *diskGuard) check(now time.Time) error {
	if g.min < 0 {
		return nil
	}
	if g.checked.IsZero() || now.Sub(g.checked) >= diskCheckEvery {
		g.checked = now
		avail, err := g.free(g.dir)
		switch {
		case err != nil:
			// Unknown free space must not stop sales: assume enough, say so.
			if !g.failing {
				g.log.Warn("outbox cannot read free disk space; not enforcing the floor", "dir", g.dir, "err", err)
			}
			g.failing = true
			g.avail = -1
		default:
			g.failing = false
			g.avail = avail
		}
	}
	if g.avail >= 0 && g.avail < g.min {
		return fmt.Errorf("%w: %d bytes free on the filesystem of %s, below the %d-byte floor", ErrFull, g.avail, g.dir, g.min)
	}
	return nil
}
