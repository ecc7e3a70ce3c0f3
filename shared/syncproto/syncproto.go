// Package syncproto defines the small messages the agent and the hub exchange
// besides events: the hub's end-to-end acknowledgement (how far it has
// durably applied a device's events) and the agent's heartbeat.
//
// Why an end-to-end ack: a single JetStream server acknowledges a publish
// before it fsyncs it, so a PubAck alone is not a durable promise. The
// agent's outbox keeps every event until the hub says it has committed it to
// its database; the hub's watermark is the only thing that deletes events.
package syncproto

// Watermark says the hub has durably processed (applied or dead-lettered)
// every event of the device's epoch with seq <= Seq.
type Watermark struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Heartbeat is the agent's periodic request to the hub (subject
// subjects.HubSync). The hub records it for GET /v1/stores and answers with
// a HeartbeatReply.
type Heartbeat struct {
	Store   string `json:"store"`
	Device  string `json:"device"`
	Epoch   uint64 `json:"epoch"`
	Version string `json:"version,omitempty"`
	// Backlog is the number of events in the outbox not yet confirmed.
	Backlog int64 `json:"backlog"`
	// OldestUnackedMS is the age in milliseconds of the oldest of them.
	OldestUnackedMS int64 `json:"oldest_unacked_ms"`
	// PublishedSeq is the last seq the agent has had acknowledged by JetStream.
	PublishedSeq uint64 `json:"published_seq"`
	// AgentTimeMS is the agent's wall clock (Unix ms) when it sent this.
	AgentTimeMS int64 `json:"agent_time_ms"`
	// HLCSkewMS is how far the agent's wall clock is behind its own HLC
	// (non-zero after the wall clock stepped backwards).
	HLCSkewMS int64 `json:"hlc_skew_ms"`
	// UnsyncedSales is the number of sales among the unconfirmed events,
	// UnsyncedSalesValue their value (Σ qty × unit_price in minor units;
	// lines without a price count 0) and OldestUnsyncedSaleMS the age in
	// milliseconds of the oldest: the money the store would lose track of
	// if the device died now. Absent (0) from agents that predate them.
	UnsyncedSales        int64 `json:"unsynced_sales,omitempty"`
	UnsyncedSalesValue   int64 `json:"unsynced_sales_value,omitempty"`
	OldestUnsyncedSaleMS int64 `json:"oldest_unsynced_sale_ms,omitempty"`
}

// HeartbeatReply is the hub's answer to a Heartbeat.
type HeartbeatReply struct {
	// HubTimeMS is the hub's wall clock (Unix ms), for skew reporting.
	HubTimeMS int64 `json:"hub_time_ms"`
	// Watermarks lists the device's applied watermark per epoch.
	Watermarks []Watermark `json:"watermarks"`
	// Error is set when the hub could not serve the request.
	Error string `json:"error,omitempty"`
}
