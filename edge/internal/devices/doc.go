// Package devices runs the store's own hardware for the agent: each
// configured scanner or RFID reader gets its serial port, its framer and its
// profile's decoder, and what they read becomes events in the outbox (scan,
// enter, leave, device_status), entries in the scan stream, counters for
// GET /v1/devices, and, for stock sweeps that name their area, where the
// items were last seen (Options.Places; fitting-room reads never count).
//
// The promise: a device can only ever hurt itself. A port that vanishes is
// reopened with backoff (serialport), garbage and bad checksums are rejected
// and counted per device (framing, profile), a frame that does not decode is
// never turned into a guessed product, and a full outbox costs a device's
// events, never the agent.
//
// Each device's bytes are handled on its port's goroutine; the mutex of a
// device guards its framer, smoother and counters, and is never held while
// events are appended to the outbox.
package devices
