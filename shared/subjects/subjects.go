// Package subjects names every NATS subject, stream, consumer and service the
// platform uses, in one place, so that edge, hub and the deployment's
// permission files (deploy/nats) cannot drift apart.
//
// Layout (store and device are event tokens: letters, digits, '-', '_'):
//
//	omni.ev.<store>.<device>         uplink events, captured by stream OMNI_EVENTS
//	omni.ack.<store>.<device>        hub -> agent: applied watermark, pushed after each commit
//	omni.hub.sync.<store>.<device>   agent -> hub request/reply (micro service): heartbeat in, watermark and hub time out
//	omni.hub.cust.<store>.<op>       agent -> hub request/reply (micro service): customer cards and erasure
//	                                 matches and receipts (op: card, match, receipt), see shared/syncproto
//
// A store's credentials need publish rights on omni.ev.<store>.>,
// omni.hub.sync.<store>.> and omni.hub.cust.<store>.>, and subscribe
// rights on omni.ack.<store>.> and
// its own inbox space InboxPrefix(store)+".>" (agents use that prefix for
// PubAcks and replies, so one store cannot read another's); see
// deploy/nats.
package subjects

import "strings"

const (
	// StreamEvents is the JetStream stream holding uplink events.
	StreamEvents = "OMNI_EVENTS"
	// EventsAll matches every uplink event subject.
	EventsAll = "omni.ev.>"
	// HubConsumer is the durable pull consumer shared by hub replicas.
	HubConsumer = "omni-hub"
	// HubService is the micro service name hub replicas register.
	HubService = "omni-hub"
	// HubSyncAll matches every heartbeat request subject.
	HubSyncAll = "omni.hub.sync.*.*"
	// AckAll matches every acknowledgement subject.
	AckAll = "omni.ack.>"
	// CustAll matches every customer request subject: what the hub
	// exports and its customer service answers.
	CustAll = "omni.hub.cust.>"
	// CustService is the micro service name of the hub's customer
	// requests.
	CustService = "omni-hub-customers"
)

// Customer request operations (the last token of a Cust subject).
const (
	// CustCard asks for the customer card of a shopper who identified.
	CustCard = "card"
	// CustMatch asks which of the agent's identifiers an erasure names.
	CustMatch = "match"
	// CustReceipt reports that the agent carried an erasure out.
	CustReceipt = "receipt"
)

// Cust is the subject a store's agents send customer request op to. The
// store is the subject's, never the body's: a store's credentials allow
// only its own (see deploy/nats), so the hub learns who asks from here.
func Cust(store, op string) string { return "omni.hub.cust." + store + "." + op }

// CustAllOf matches every customer request subject of op, for one
// service endpoint.
func CustAllOf(op string) string { return "omni.hub.cust.*." + op }

// CustStore is the customer request subject space of store: what its
// credentials may publish to and import.
func CustStore(store string) string { return "omni.hub.cust." + store + ".>" }

// ParseCust extracts store and op from a customer request subject.
func ParseCust(subject string) (store, op string, ok bool) {
	return parse3(subject, "omni.hub.cust.")
}

// InboxPrefix is the reply-inbox prefix a store's agents use.
func InboxPrefix(store string) string { return "_INBOX." + store }

// Event is the subject a device publishes its events on.
func Event(store, device string) string { return "omni.ev." + store + "." + device }

// Ack is the subject the hub pushes a device's applied watermark on.
func Ack(store, device string) string { return "omni.ack." + store + "." + device }

// HubSync is the subject a device sends its heartbeat request to.
func HubSync(store, device string) string { return "omni.hub.sync." + store + "." + device }

// ParseEvent extracts store and device from an event subject.
func ParseEvent(subject string) (store, device string, ok bool) {
	return parse3(subject, "omni.ev.")
}

// ParseHubSync extracts store and device from a heartbeat subject.
func ParseHubSync(subject string) (store, device string, ok bool) {
	return parse3(subject, "omni.hub.sync.")
}

func parse3(subject, prefix string) (string, string, bool) {
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return "", "", false
	}
	store, device, ok := strings.Cut(rest, ".")
	if !ok || store == "" || device == "" || strings.Contains(device, ".") {
		return "", "", false
	}
	return store, device, true
}
