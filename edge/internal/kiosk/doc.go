// Package kiosk serves the shopper's page of a store kiosk or smart mirror
// (/kiosk/) from the edge agent.
//
// It exists because a shopper must be able to scan a product and see it,
// its reviews, its sizes and where they are in stock even while the store is
// offline: the page is plain HTML rendered by the agent from its local
// product cache, with a little inline JavaScript and no external assets, so
// it needs nothing but the agent. The JavaScript only adds comfort: it
// follows the agent's scan stream (GET /v1/scans/stream) so a scan shows the
// product without a touch, refreshes a fitting room's item list as soon as
// the room's stream (GET /kiosk/room/{zone}/stream) says it changed and
// every few seconds besides, and returns to the start screen when the
// shopper walks away. Every form works without
// it.
//
// What it promises:
//   - A review is validated with the same limits as the event schema before
//     it is appended, and nothing is appended on bad input. One kiosk
//     session reviews a product at most once: the review is appended with
//     the idempotency key "review:"+session+":"+productID, so a double
//     submit or a retry appends one event.
//   - A fitting room's "bring me another size" (an assist event) is keyed by
//     session, zone and size: a double tap sends one request. "Call a
//     colleague" (an assist with reason help, for the room or for the item
//     she is trying) is keyed by the view of the page it was tapped on, so
//     a double tap sends one call and a later one, from a new page, is
//     heard again.
//   - The page promises nothing about reviews that depends on HQ's review
//     policy (published at once or held for a moderator), which the store
//     does not have: only that they are checked and may take a while.
//   - All text is escaped (html/template); every page carries a nonce-based
//     Content-Security-Policy. Every POST must be same-origin and its body is
//     bounded (MaxFormBytes); a review or assist must also carry the form
//     token of the session it was rendered for ("Done" needs none: ending a
//     session is harmless).
//
// A session is one shopper's visit: a random id in the omni_kiosk cookie,
// together with the time of the shopper's last action. It ends after
// Options.SessionIdle (10 minutes) without one, or when the shopper presses
// "Done"; the next shopper then gets a new id. Automatic requests (the room
// list refresh, the idle return to the start screen) do not count as
// activity.
//
// Sharp edges: the form tokens are derived from a key made when the Kiosk is
// built, so a form rendered before the agent restarted is refused with a
// polite "please try again" (nothing is appended). Scan navigation follows
// every scanner of the agent unless the page is opened with ?scanner=NAME.
package kiosk
