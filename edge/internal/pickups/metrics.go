package pickups

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the follower's Prometheus metrics (omni_edge_pickups_*),
// read from one Status and the cache's Stats per scrape.
func (f *Follower) Collector() prometheus.Collector { return collector{f} }

type collector struct{ f *Follower }

var (
	descConnected = prometheus.NewDesc("omni_edge_pickups_connected",
		"1 while the agent is reading the store's pickup orders.", nil, nil)
	descSynced = prometheus.NewDesc("omni_edge_pickups_synced",
		"1 while the pickup cache is caught up with the hub and following it live.", nil, nil)
	descSyncedAge = prometheus.NewDesc("omni_edge_pickups_synced_age_seconds",
		"Time since a session last caught up with the hub (+Inf: never).", nil, nil)
	descOrders = prometheus.NewDesc("omni_edge_pickups_orders",
		"Pickup orders held, by state (other: a state this agent does not know).", []string{"state"}, nil)
	descSessions = prometheus.NewDesc("omni_edge_pickups_sessions_total",
		"Sessions that read the store's orders from the start (start, reconnect, consumer failure).", nil, nil)
	descRejected = prometheus.NewDesc("omni_edge_pickups_rejected_total",
		"Pickup messages skipped as unreadable (bad value, key, or store).", nil, nil)
	descIgnored = prometheus.NewDesc("omni_edge_pickups_ignored_total",
		"Pickup documents ignored as older than the one held.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descSynced, descSyncedAge, descOrders, descSessions, descRejected, descIgnored} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s, cs := c.f.Status(), c.f.o.Cache.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descConnected, b2f(s.Connected))
	gauge(descSynced, b2f(s.Synced))
	age := math.Inf(1)
	if !cs.SyncedAt.IsZero() {
		age = max(0, time.Since(cs.SyncedAt).Seconds())
	}
	gauge(descSyncedAge, age)
	gauge(descOrders, float64(cs.Open), "open")
	gauge(descOrders, float64(cs.Collected), "collected")
	gauge(descOrders, float64(cs.Cancelled), "cancelled")
	gauge(descOrders, float64(cs.Orders-cs.Open-cs.Collected-cs.Cancelled), "other")
	counter(descSessions, s.Sessions)
	counter(descRejected, s.Rejected)
	counter(descIgnored, s.Ignored)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
