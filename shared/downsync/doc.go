// Package downsync is the contract of the hub-to-store direction: where the
// hub publishes the catalog, prices, review summaries, recommendations (each
// product's top complements), HQ's survey definitions, stock and the carts
// checked out (so a till refuses a code of a cart closed elsewhere), how
// keys are spelled, the documents stored under them, and the product view a
// store shows a shopper. The hub writes it (cloud/internal/downsync), agents read
// it into their bbolt cache (edge/internal/productcache), and both render
// the same View.
//
// # Why one JetStream KV bucket
//
// Everything goes into one KV bucket (a stream with one subject per key and
// history 1) rather than an event stream of changes:
//
//   - A key holds only its latest value, so an agent that was offline for a
//     week and resumes from the stream sequence it stopped at receives each
//     key that changed once, with its current value: what changed, not the
//     whole history. A new agent bootstraps from the same stream by reading
//     every key once: the snapshot is the bucket itself.
//   - One bucket is one sequence space, so "where the agent stopped" is a
//     single number it stores in the same bbolt transaction as the values
//     it applied: it resumes exactly there after any outage or crash.
//   - Agents read a subset with subject filters: the whole catalog and
//     review summaries and recommendations, and stock for their own store, their configured
//     nearby stores and the online warehouse.
//
// Stock of every location is visible to every store of the chain (a shopper
// is told which nearby store has her size); data private to one store
// (pickup orders, customer carts) does not belong in this bucket. Closed
// carts do (closedcart.go): a digest of the cart's id, where and when it
// was checked out, and nothing of the shopper or her lines.
//
// Every document carries a Version that only grows; the hub publishes with
// per-key compare-and-set so a slower hub replica can never overwrite a
// newer value with an older one, and agents ignore a document older than the
// one they hold.
package downsync
