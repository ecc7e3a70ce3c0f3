package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// retentionEvery is how often a hub rolls up the ledger's old lines.
const retentionEvery = time.Hour

// runRetention rolls up the stock ledger's lines older than age (none when
// age is 0) and deletes the shoppers' interests past their window every
// retentionEvery (the first pass a minute after start, so a starting hub
// catches up on its events first) until ctx ends. A failed pass is logged
// and tried again at the next tick; it never stops the hub.
func runRetention(ctx context.Context, st *store.Store, age time.Duration, met *metrics, log *slog.Logger) error {
	opts := store.RetentionOptions{Age: age}
	if st.Dialect() == "sqlite" {
		// One writer: leave it to apply between the small transactions.
		opts.Pause = 20 * time.Millisecond
	}
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// Interests are personal data kept for their window only, whether
		// or not the web shop still sends new ones (each write expires a
		// few as well).
		if err := st.ExpireAllInterests(ctx); err != nil && ctx.Err() == nil {
			log.Warn("expiring interests failed; trying again later", "err", err)
		}
		if age <= 0 {
			t.Reset(retentionEvery)
			continue
		}
		start := time.Now()
		res, err := st.RetainLedger(ctx, opts)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			met.retention.WithLabelValues("error").Inc()
			log.Warn("ledger retention failed; trying again later", "err", err)
		default:
			met.retention.WithLabelValues("ok").Inc()
			met.rolledUp.Add(float64(res.Lines))
			if !res.Horizon.IsZero() {
				met.horizon.Set(float64(res.Horizon.Unix()))
			}
			if res.Lines > 0 {
				log.Info("ledger retention", "horizon", res.Horizon.Format(time.DateOnly), "lines", res.Lines,
					"daily_totals", res.Days, "transactions", res.Transactions, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		t.Reset(retentionEvery)
	}
}
