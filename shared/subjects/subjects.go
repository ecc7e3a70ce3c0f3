// Package subjects names every NATS subject, stream, consumer and service the
// platform uses, in one place, so that edge, hub and the deployment's
// permission files (deploy/nats) cannot drift apart.
//
// Layout (store and device are event tokens: letters, digits, '-', '_'):
//
//	omni.ev.<store>.<device>         uplink events, captured by stream OMNI_EVENTS
//	omni.ack.<store>.<device>        hub -> agent: applied watermark, pushed after each commit
//	omni.hub.sync.<store>.<device>   agent -> hub request/reply (micro service): heartbeat in, watermark and hub time out
//
// A store's credentials need publish rights on omni.ev.<store>.> and
// omni.hub.sync.<store>.>, and subscribe rights on omni.ack.<store>.> and
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
)

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
