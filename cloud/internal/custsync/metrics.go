package custsync

import "github.com/prometheus/client_golang/prometheus"

var (
	requestsDesc = prometheus.NewDesc("omni_hub_customer_requests_total",
		"Stores' customer requests answered, by outcome (card, card_not_found, match, receipt, refused as malformed, error).", []string{"outcome"}, nil)
	noticesDesc = prometheus.NewDesc("omni_hub_erasure_notices_published_total",
		"Erasure notices written to stores' keys of the erasure bucket.", nil, nil)
	roundsDesc = prometheus.NewDesc("omni_hub_erasure_rounds_total",
		"Erasure publishing rounds, by result.", []string{"result"}, nil)
	lastRoundDesc = prometheus.NewDesc("omni_hub_erasure_last_round_timestamp_seconds",
		"When the last erasure publishing round finished (Unix seconds; 0 before the first).", nil, nil)
)

// Collector exposes Stats as Prometheus metrics.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- noticesDesc
	ch <- roundsDesc
	ch <- lastRoundDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for outcome, n := range map[string]uint64{
		"card": st.Cards, "card_not_found": st.CardsNotFound, "match": st.Matches, "receipt": st.Receipts,
		"refused": st.Refused, "error": st.RequestErrors,
	} {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(noticesDesc, prometheus.CounterValue, float64(st.NoticesPublished))
	ch <- prometheus.MustNewConstMetric(roundsDesc, prometheus.CounterValue, float64(st.Rounds-st.RoundErrors), "ok")
	ch <- prometheus.MustNewConstMetric(roundsDesc, prometheus.CounterValue, float64(st.RoundErrors), "error")
	var last float64
	if !st.LastRound.IsZero() {
		last = float64(st.LastRound.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(lastRoundDesc, prometheus.GaugeValue, last)
}
