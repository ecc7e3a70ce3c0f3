// Package events defines the event envelope and the kinds of event that flow
// from store devices to the hub: the contract both sides validate against.
//
// Every event is an Envelope: schema version, a UUIDv7 id, its Origin (store,
// device, outbox epoch, seq), a hybrid-logical-clock stamp, a Kind and a
// kind-specific JSON body. The edge agent fills id, origin, seq and clock;
// POS apps send only a Draft (kind + data).
//
// Guarantees: Validate and ParseDrafts never accept an event the hub could
// not apply for a structural reason, and every rejection is a *FieldError
// naming the offending field (errors.Is(err, ErrInvalid) holds). Bodies are
// kept as the sender wrote them (richer fields are welcome and travel to the
// hub untouched); only the location is filled in when missing.
//
// Sharp edge: an envelope with a schema version newer than CurrentVersion
// fails Validate with ErrUnsupportedVersion; callers must keep such events
// (the hub parks them in its dead-letter) rather than drop them.
//
// The wire format is documented in SCHEMA.md beside this file.
package events
