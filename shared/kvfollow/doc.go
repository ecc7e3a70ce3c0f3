// Package kvfollow follows a JetStream key-value bucket: it hands over, in
// stream order, every put, delete and purge of the keys under some subject
// filters, with their revisions, from the position its owner chooses, and
// starts over whenever that is the only safe thing to do.
//
// It exists because three parts of omnisync read a bucket the same way, and
// each learnt the same lessons the hard way: the agent's product cache
// (edge downlink, resuming from the stream sequence it stored), the agent's
// pickup orders (edge pickups, reading its store's keys whole at every
// session) and the hub's mirror of what its own buckets hold (cloud
// downpub, the last revision and version of every key).
//
// A Follower owns a loop of sessions (Run, stopped by its context or
// Close). A session is the owner's function: it decides where to read from
// (a sequence it stored, the start of the stream, the last message of every
// key), checks whatever it must, and reads with Read, once or several times.
//
// What Read guarantees:
//   - Entries arrive in stream order, each once, in batches: at most
//     MaxBatch, and none waits more than MaxDelay for company; the batch
//     that first catches up is handed over at once. A batch is CaughtUp
//     when the consumer had nothing more pending after its last entry; a
//     read that starts with nothing to deliver hands over an empty
//     CaughtUp batch first. What was delivered is handed over even when the
//     read ends (its context too: apply then gets a context without the
//     cancellation), so nothing is read twice for nothing.
//   - It reads one ordered consumer. When that consumer fails or recreates
//     itself (a gap, missed heartbeats, deleted on the server), or the
//     connection reconnects, Read returns an error wrapping ErrRestart: a
//     server that came back may have lost its last writes or be another
//     one, and only the owner knows what to check before reading on.
//   - Until it has caught up, a read that receives nothing for
//     RequestTimeout fails: a consumer that stalls is not waited on forever.
//   - Read never blocks past its context: messages come through a callback
//     into a channel that Read selects on with the context, and stopping a
//     consumer (which, offline, waits for a recreation attempt in progress)
//     is given a second, then left to finish on its own.
//   - It asks the server for nothing but creating the consumer, pulling
//     from it and deleting it: no stream or consumer info, no direct gets.
//     With one filter subject, the client puts the filter in the create
//     request's subject, where a store's permissions check it (see
//     deploy/nats/mint-store.sh).
//
// What Run guarantees:
//   - A session starts only once the connection is up (retry.WaitConnected).
//   - A session that ends with ErrRestart after making progress is followed
//     by the next at once; any other end waits a retry.Backoff
//     (MinBackoff..MaxBackoff), which progress resets.
//   - An error the owner lists in Options.Fatal ends Run, which returns it;
//     the context ending or Close ends it with nil.
//   - Each failure is logged once while it repeats (an outage): Info for a
//     stream that does not exist yet, Warn for anything else, then Debug
//     until a session makes progress.
//
// Sharp edges: a Follower's Run may be called once. Reads are meant to run
// one at a time, in the owner's session; Status adds them up.
package kvfollow
