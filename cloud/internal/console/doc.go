// Package console is the HQ console: the pages a merchandiser works in
// (inventory search, a product's store × size grid) and the live feed
// that keeps them current without reloads.
//
// Live: the hub calls Broker.Publish after each committed batch with what
// it changed (positions, dead letters); the broker hands the change to
// every open event stream (GET /v1/stream, server-sent events) of this
// replica at once and publishes it on core NATS (ChangesSubject, inside
// the hub's account, exported to no store) so that streams held by other
// hub replicas hear of it too. A change carries keys only, never figures:
// a page that cares re-reads itself, so what it shows is always what the
// database holds and what its viewer may see.
//
// Sharp edges:
//   - Delivery is best effort: a stream that falls behind, or a replica
//     that misses a NATS message, gets a change with All set ("reload"),
//     never a silent gap; changes are not replayed after a reconnect (the
//     page re-reads itself on reconnect instead).
//   - A stream authenticates when it opens and again at every keep-alive
//     (StreamPing), so a logout or an expired session ends it within that
//     period.
package console
