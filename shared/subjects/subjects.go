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
//	omni.staff.<store>.changes       agent -> the store's other agents: staff queue requests as they change
//	omni.staff.<store>.sync          agent -> the store's other agents: "send me your queue" (on connect)
//	omni.staff.<store>.reply.<inst>  the answers to one agent's sync (inst: that agent process's id)
//
// A store's credentials need publish rights on omni.ev.<store>.>,
// omni.hub.sync.<store>.>, omni.hub.cust.<store>.> and
// omni.staff.<store>.>, and subscribe rights on omni.ack.<store>.>,
// omni.staff.<store>.> and its own inbox space InboxPrefix(store)+".>"
// (agents use that prefix for PubAcks and replies, so one store cannot read
// another's); see deploy/nats. The staff subjects are the store's own: no
// account exports them, so they never leave the store's account, and a
// store's leaf node keeps them on the leaf (deny_imports and deny_exports
// of StaffAll in deploy/nats/leaf/leaf.conf).
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
	// StaffAll matches every store's staff queue subjects: what a store's
	// leaf node neither sends to nor takes from the hub.
	StaffAll = "omni.staff.>"
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

// StaffStore is the staff queue subject space of store: what its
// credentials may publish and subscribe to.
func StaffStore(store string) string { return "omni.staff." + store + ".>" }

// StaffChanges is the subject a store's agents publish their staff queue
// changes on, and listen to for each other's.
func StaffChanges(store string) string { return "omni.staff." + store + ".changes" }

// StaffSync is the subject an agent asks the store's other agents for
// their whole staff queue on; they answer to its StaffReply subject.
func StaffSync(store string) string { return "omni.staff." + store + ".sync" }

// StaffReply is where the answers to agent process inst's StaffSync go:
// in the staff space, so a store's credentials need nothing more to answer.
func StaffReply(store, inst string) string { return "omni.staff." + store + ".reply." + inst }

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
