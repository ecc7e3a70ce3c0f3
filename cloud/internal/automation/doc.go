// Package automation decides which messages the hub sends when something
// happens to a customer: rules (a trigger, conditions on the customer's
// profile, RFM segment or cart, a delay, the consent purpose the message
// needs, a frequency cap) and their actions (a signed webhook, a NATS
// subject). It is pure: events and facts in, jobs to schedule out; the
// signature of a webhook; the wait before a retry. The runner (package
// automation/runner) schedules jobs durably in the hub's database and
// delivers them; it asks for consent when it sends, never when it plans.
//
// # Triggers
//
// Built in: cart_abandoned (the carts' abandoned-cart events),
// back_in_stock (an item a customer looked at or tried on is available
// again), post_purchase (a purchase attributed to a customer: the survey
// invitation), fitting_room_unanswered (a help request from a fitting room
// not answered within the rule's delay, 3 minutes by default; checked again
// when sent), at_risk (a customer's RFM segment dropped to "At risk").
//
// # Jobs and idempotency
//
// A rule matched by an event makes one job whose id is the rule's id and
// the event's id: the same event evaluated twice (a replay, two replicas)
// schedules one job, and that id is the idempotency key every delivery
// attempt carries, so a receiver drops what it has seen.
//
// Sharp edges: conditions read the facts of the moment the event is
// evaluated (the segment when the cart was abandoned), while consent and
// the frequency cap are read when the job is sent.
package automation
