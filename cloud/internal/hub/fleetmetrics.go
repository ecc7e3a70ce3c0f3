package hub

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/subjects"
)

// scrapeTimeout bounds the reads a scrape makes (the fleet from the
// database, the consumer from NATS), so a stalled dependency makes a
// scrape short of those series rather than hang it.
const scrapeTimeout = 5 * time.Second

var (
	labelsDevice      = []string{"store", "device"}
	descHeartbeatAge  = prometheus.NewDesc("omni_hub_device_last_heartbeat_age_seconds", "Seconds since the device's latest heartbeat reached a hub (devices that never sent one are not listed).", labelsDevice, nil)
	descBacklog       = prometheus.NewDesc("omni_hub_device_backlog", "Events in the device's outbox the hub has not yet confirmed, as of its latest heartbeat.", labelsDevice, nil)
	descOldestUnacked = prometheus.NewDesc("omni_hub_device_oldest_unacked_seconds", "Age of the oldest event in the device's outbox the hub has not yet confirmed (sales not yet in the books), as of its latest heartbeat; 0 when caught up.", labelsDevice, nil)
	descClockSkew     = prometheus.NewDesc("omni_hub_device_clock_skew_seconds", "How far the device's wall clock is from the hub's, as of its latest heartbeat.", labelsDevice, nil)
	descEventsApplied = prometheus.NewDesc("omni_hub_device_events_applied_total", "Events of the device applied to the books, over all its outbox epochs.", labelsDevice, nil)
	descUnsyncedSales = prometheus.NewDesc("omni_hub_device_unsynced_sales", "Sales in the device's outbox the hub has not yet confirmed, as of its latest heartbeat.", labelsDevice, nil)
	descUnsyncedValue = prometheus.NewDesc("omni_hub_device_unsynced_sales_value", "Value of those sales in minor currency units (lines without a price count 0), as of its latest heartbeat.", labelsDevice, nil)
	descUnsyncedAge   = prometheus.NewDesc("omni_hub_device_oldest_unsynced_sale_seconds", "Age of the oldest of those sales as of the device's latest heartbeat; 0 when none.", labelsDevice, nil)
	descUnsyncedAlert = prometheus.NewDesc("omni_hub_unsynced_sale_alert_seconds", "The hub's --unsynced-sale-alert: the age of an unconfirmed sale the console flags (alerts warn before it).", nil, nil)
	descPending       = prometheus.NewDesc("omni_hub_consumer_pending", "Events in the stream not yet delivered to the hubs' durable consumer.", nil, nil)
	descAckPending    = prometheus.NewDesc("omni_hub_consumer_ack_pending", "Events delivered to a hub replica and not yet acknowledged (being applied).", nil, nil)
	descRedelivered   = prometheus.NewDesc("omni_hub_consumer_redelivered", "Events delivered more than once and not yet acknowledged.", nil, nil)
	descReadErrors    = prometheus.NewDesc("omni_hub_metrics_read_errors_total", "Scrapes that could not read a source of metrics (fleet: the database; consumer: NATS); its series are missing from that scrape.", []string{"source"}, nil)
)

// fleetSource is what the fleet collector reads: every device the hub knows.
type fleetSource interface {
	Devices(ctx context.Context) ([]store.DeviceStatus, error)
}

// fleetCollector reports every device's sync state and the events
// consumer's backlog, read when Prometheus scrapes. Every replica reads
// the same database and the same consumer, so every replica reports the
// same values: alert on max by (store, device), not on a sum.
type fleetCollector struct {
	devices fleetSource
	// consumer reads the durable consumer's state; nil without NATS.
	consumer func(ctx context.Context) (*jetstream.ConsumerInfo, error)
	now      func() time.Time
	// unsyncedAlert is exported as omni_hub_unsynced_sale_alert_seconds
	// (0: not exported).
	unsyncedAlert time.Duration
	// Scrapes may run at once: the error counts are atomic.
	fleetErrors, consumerErrors atomic.Uint64
}

func newFleetCollector(devices fleetSource, js jetstream.JetStream) *fleetCollector {
	c := &fleetCollector{devices: devices, now: time.Now}
	if js != nil {
		c.consumer = func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
			cons, err := js.Consumer(ctx, subjects.StreamEvents, subjects.HubConsumer)
			if err != nil {
				return nil, err
			}
			return cons.Info(ctx)
		}
	}
	return c
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeartbeatAge, descBacklog, descOldestUnacked, descClockSkew, descEventsApplied, descUnsyncedSales, descUnsyncedValue, descUnsyncedAge, descUnsyncedAlert, descPending, descAckPending, descRedelivered, descReadErrors} {
		ch <- d
	}
}

// Collect reads the fleet and the consumer, once per scrape.
func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := c.now()
	if devs, err := c.devices.Devices(ctx); err != nil {
		c.fleetErrors.Add(1)
	} else {
		for _, d := range devs {
			lv := []string{d.Store, d.Device}
			if !d.LastHeartbeat.IsZero() {
				ch <- prometheus.MustNewConstMetric(descHeartbeatAge, prometheus.GaugeValue, max(0, now.Sub(d.LastHeartbeat).Seconds()), lv...)
				ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(d.Backlog), lv...)
				ch <- prometheus.MustNewConstMetric(descOldestUnacked, prometheus.GaugeValue, d.OldestUnackedAge.Seconds(), lv...)
				ch <- prometheus.MustNewConstMetric(descClockSkew, prometheus.GaugeValue, d.ClockSkew.Seconds(), lv...)
				ch <- prometheus.MustNewConstMetric(descUnsyncedSales, prometheus.GaugeValue, float64(d.Unsynced.Count), lv...)
				ch <- prometheus.MustNewConstMetric(descUnsyncedValue, prometheus.GaugeValue, float64(d.Unsynced.Value), lv...)
				ch <- prometheus.MustNewConstMetric(descUnsyncedAge, prometheus.GaugeValue, d.Unsynced.OldestAge.Seconds(), lv...)
			}
			ch <- prometheus.MustNewConstMetric(descEventsApplied, prometheus.CounterValue, float64(d.EventsApplied), lv...)
		}
	}
	if c.unsyncedAlert > 0 {
		ch <- prometheus.MustNewConstMetric(descUnsyncedAlert, prometheus.GaugeValue, c.unsyncedAlert.Seconds())
	}
	if c.consumer != nil {
		if info, err := c.consumer(ctx); err != nil {
			c.consumerErrors.Add(1)
		} else {
			ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(info.NumPending))
			ch <- prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, float64(info.NumAckPending))
			ch <- prometheus.MustNewConstMetric(descRedelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
		}
	}
	ch <- prometheus.MustNewConstMetric(descReadErrors, prometheus.CounterValue, float64(c.fleetErrors.Load()), "fleet")
	ch <- prometheus.MustNewConstMetric(descReadErrors, prometheus.CounterValue, float64(c.consumerErrors.Load()), "consumer")
}
