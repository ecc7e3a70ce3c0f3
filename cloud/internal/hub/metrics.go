package hub

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/omnisync/omnisync/cloud/internal/basketfold"
	"github.com/omnisync/omnisync/cloud/internal/downpub"
	"github.com/omnisync/omnisync/cloud/internal/heartbeat"
	"github.com/omnisync/omnisync/cloud/internal/ingest"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// metrics is the hub's Prometheus registry; one per hub so several hubs can
// live in one test process.
type metrics struct {
	reg          *prometheus.Registry
	applied      prometheus.Counter
	duplicates   prometheus.Counter
	deadLettered prometheus.Counter
	held         prometheus.Counter
	deferred     prometheus.Counter
	batch        prometheus.Histogram
	heartbeats   prometheus.Counter
	recoveries   *prometheus.CounterVec
	applySteps   *prometheus.HistogramVec
	rolledUp     prometheus.Counter
	retention    *prometheus.CounterVec
	horizon      prometheus.Gauge
	applyErrors  prometheus.Counter
	// started is when the hub began; gauges of "last done" times read it
	// before the first.
	started time.Time
}

func newMetrics() *metrics {
	m := &metrics{
		reg:     prometheus.NewRegistry(),
		started: time.Now(),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omni_hub_events_applied_total", Help: "Events applied to the books.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omni_hub_events_duplicate_total", Help: "Events received again and ignored by dedup.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omni_hub_events_dead_lettered_total", Help: "Events kept in the dead letter instead of applied.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omni_hub_events_deferred_total", Help: "Events redelivered later because their device's gap was too wide.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "omni_hub_apply_batch_seconds", Help: "Time to apply one batch of events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omni_hub_heartbeats_total", Help: "Agent heartbeats answered.",
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omni_hub_ingest_recoveries_total",
			Help: "Failures of the events consumer's message stream that were recovered from, by cause (no_heartbeat: the hub was paused or the server lost the pull; consumer_gone; iterator_closed; other).",
		}, []string{"cause"}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omni_hub_apply_errors_total", Help: "Batches the database failed to apply (retried, split, or waited out until it answers; an event that alone still fails is dead-lettered).",
		}),
	}
	m.applySteps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "omni_hub_apply_step_seconds",
		Help:    "Time each step of a batch's transaction took: dedup, each aggregate (reservations, ledger, stock, conflicts, reviews, ...), devices, commit.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"step"})
	m.rolledUp = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "omni_hub_ledger_rolled_up_lines_total", Help: "Stock ledger lines rolled up into daily totals and deleted by retention.",
	})
	m.retention = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "omni_hub_ledger_retention_runs_total", Help: "Ledger retention passes, by result (ok, error).",
	}, []string{"result"})
	m.horizon = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "omni_hub_ledger_horizon_timestamp_seconds", Help: "The ledger's retention horizon: raw lines before it are rolled up.",
	})
	m.held = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "omni_hub_events_held_total", Help: "Events held in the exception queue for naming an unknown SKU, GTIN or location.",
	})
	m.reg.MustRegister(m.held, m.applied, m.duplicates, m.deadLettered, m.deferred, m.batch, m.heartbeats, m.recoveries,
		m.applySteps, m.rolledUp, m.retention, m.horizon, m.applyErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) ingest() ingest.Metrics {
	return ingest.Metrics{
		Applied:      func(n int) { m.applied.Add(float64(n)) },
		Duplicates:   func(n int) { m.duplicates.Add(float64(n)) },
		DeadLettered: func(n int) { m.deadLettered.Add(float64(n)) },
		Held:         func(n int) { m.held.Add(float64(n)) },
		Deferred:     func(n int) { m.deferred.Add(float64(n)) },
		BatchSeconds: m.batch.Observe,
		Recovered:    func(cause string) { m.recoveries.WithLabelValues(cause).Inc() },
		ApplyFailed:  m.applyErrors.Inc,
	}
}

// store exposes the store's counters.
func (m *metrics) store(st *store.Store) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "omni_hub_stock_redos_total",
		Help: "Batches applied twice because a position's state this replica had cached had been changed by another replica (PostgreSQL); steadily high when replicas apply the same stores' events.",
	}, func() float64 { return float64(st.StockRedos()) }))
}

// downpub exposes the down-sync publisher's counters.
func (m *metrics) downpub(p *downpub.Publisher) {
	counter := func(name, help string, f func(downpub.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(p.Stats())) })
	}
	m.reg.MustRegister(
		counter("omni_hub_downsync_published_total", "Documents published to the down-sync bucket.", func(s downpub.Stats) uint64 { return s.Published }),
		counter("omni_hub_downsync_skipped_total", "Documents not published because the bucket already had them.", func(s downpub.Stats) uint64 { return s.Skipped }),
		counter("omni_hub_downsync_conflicts_total", "Compare-and-set conflicts with another hub replica.", func(s downpub.Stats) uint64 { return s.Conflicts }),
		counter("omni_hub_downsync_errors_total", "Publishes that failed and were retried.", func(s downpub.Stats) uint64 { return s.Errors }),
		counter("omni_hub_pickups_expired_total", "Closed pickup orders deleted from the pickup bucket after their retention.", func(s downpub.Stats) uint64 { return s.Expired }),
		counter("omni_hub_pickups_relocated_total", "Pickup orders deleted under a store because a newer reservation moved them to another.", func(s downpub.Stats) uint64 { return s.Relocated }),
		counter("omni_hub_pickups_markers_purged_total", "Delete markers purged from the pickup bucket's stream.", func(s downpub.Stats) uint64 { return s.Purged }),
		counter("omni_hub_downsync_resyncs_total", "Times the down-sync mirrors were rebuilt and compared with the store (after NATS reconnects).", func(s downpub.Stats) uint64 { return s.Resyncs }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "omni_hub_downsync_dirty", Help: "Changes waiting to be published."},
			func() float64 { return float64(p.Stats().Dirty) }),
	)
}

// basketfold exposes the basket folder's progress: recommendations
// ("bought together") lag the sales by the time since the newest
// CaughtUp of all replicas, which take turns folding.
func (m *metrics) basketfold(f *basketfold.Folder) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "omni_hub_basket_fold_baskets_total", Help: "Sales folded into the bought-together counts by this replica."},
			func() float64 { return float64(f.Stats().Baskets) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "omni_hub_basket_fold_lines_total", Help: "Sale lines read by this replica's folds."},
			func() float64 { return float64(f.Stats().Lines) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "omni_hub_basket_fold_caught_up_timestamp_seconds", Help: "When a fold of this replica last left no sale unfolded (Unix seconds; the hub's start until then)."},
			func() float64 {
				if t := f.Stats().CaughtUp; !t.IsZero() {
					return float64(t.UnixMilli()) / 1000
				}
				return float64(m.started.UnixMilli()) / 1000
			}),
	)
}

// heartbeat exposes the heartbeat service's counters.
func (m *metrics) heartbeat(s *heartbeat.Service) {
	counter := func(name, help string, f func(heartbeat.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(s.Stats())) })
	}
	m.reg.MustRegister(
		counter("omni_hub_heartbeat_flushes_total", "Writes of the heartbeats received since the previous one (one statement each).", func(s heartbeat.Stats) uint64 { return s.Flushes }),
		counter("omni_hub_heartbeat_rows_written_total", "Device heartbeats written by those flushes.", func(s heartbeat.Stats) uint64 { return s.Rows }),
		counter("omni_hub_heartbeat_flush_errors_total", "Heartbeat flushes that failed and were retried at the next.", func(s heartbeat.Stats) uint64 { return s.FlushErrors }),
		counter("omni_hub_heartbeat_watermark_reads_total", "Heartbeats answered with watermarks read from the database (the others from memory).", func(s heartbeat.Stats) uint64 { return s.WatermarkReads }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "omni_hub_heartbeats_unflushed", Help: "Devices whose latest heartbeat is not yet written."},
			func() float64 { return float64(s.Stats().Pending) }),
	)
}
