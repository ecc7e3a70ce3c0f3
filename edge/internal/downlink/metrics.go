package downlink

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the downlink's Prometheus metrics (omni_edge_downsync_*),
// read from one Status per scrape.
func (d *Downlink) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Downlink }

var (
	descConnected = prometheus.NewDesc("omni_edge_downsync_connected",
		"1 while the agent is reading the down-sync bucket.", nil, nil)
	descBootstrapping = prometheus.NewDesc("omni_edge_downsync_bootstrapping",
		"1 while the cache is being filled from the start of the stream.", nil, nil)
	descLastSeq = prometheus.NewDesc("omni_edge_downsync_last_seq",
		"Stream sequence the cache holds everything up to.", nil, nil)
	descPending = prometheus.NewDesc("omni_edge_downsync_pending",
		"Messages the consumer had yet to deliver, as of the last one delivered.", nil, nil)
	descSyncedAge = prometheus.NewDesc("omni_edge_downsync_synced_age_seconds",
		"Time since the cache was last known caught up with the hub (+Inf: never); shoppers see it as as_of.", nil, nil)
	descMessages = prometheus.NewDesc("omni_edge_downsync_received_messages_total",
		"Bucket messages received.", nil, nil)
	descBytes = prometheus.NewDesc("omni_edge_downsync_received_bytes_total",
		"Bytes of bucket messages received (subject, reply, headers, payload).", nil, nil)
	descResets = prometheus.NewDesc("omni_edge_downsync_stream_resets_total",
		"Times the stream was found recreated and the cache emptied to bootstrap again.", nil, nil)
	descSessions = prometheus.NewDesc("omni_edge_downsync_sessions_total",
		"Consumers created to read the bucket (one per start, reconnect or recovery).", nil, nil)
	descRejected = prometheus.NewDesc("omni_edge_downsync_rejected_total",
		"Bucket messages the cache could not read and skipped.", nil, nil)
	descCacheBytes = prometheus.NewDesc("omni_edge_downsync_cache_bytes",
		"Size of the product cache's data.", nil, nil)
	descCacheKeys = prometheus.NewDesc("omni_edge_downsync_cache_entries",
		"What the product cache holds, by kind.", []string{"kind"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descBootstrapping, descLastSeq, descPending, descSyncedAge,
		descMessages, descBytes, descResets, descSessions, descRejected, descCacheBytes, descCacheKeys} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descConnected, b2f(s.Connected))
	gauge(descBootstrapping, b2f(s.Bootstrapping))
	gauge(descLastSeq, float64(s.LastSeq))
	gauge(descPending, float64(s.Pending))
	age := s.SyncedAgeSeconds
	if age < 0 {
		age = math.Inf(1)
	}
	gauge(descSyncedAge, age)
	counter(descMessages, s.MessagesReceived)
	counter(descBytes, s.BytesReceived)
	counter(descResets, s.StreamResets)
	counter(descSessions, s.Sessions)
	counter(descRejected, s.Rejected)
	gauge(descCacheBytes, float64(s.CacheBytes))
	gauge(descCacheKeys, float64(s.Products), "products")
	gauge(descCacheKeys, float64(s.Variants), "variants")
	gauge(descCacheKeys, float64(s.StockPositions), "stock_positions")
	gauge(descCacheKeys, float64(s.Reviews), "reviews")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
