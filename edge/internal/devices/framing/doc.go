// Package framing cuts the byte stream of a store device (a barcode scanner,
// a UHF RFID reader) into frames: the unit a device sends for one barcode or
// one tag report.
//
// The job: a serial or USB-CDC read returns whatever bytes happened to
// arrive, so a frame may be split over many reads, several frames may arrive
// in one read, and a reconnect, a baud-rate mismatch or electrical noise puts
// garbage between them. A Framer accepts arbitrary chunks through Feed and
// calls back once per complete frame and once per discarded span of bytes,
// with the reason (a Reject). Three building blocks cover the devices a store
// has:
//
//   - Delimited: text lines ended by a terminator (CR, LF, CRLF, TAB, any of
//     CR/LF, or any byte string), with an optional prefix that marks a frame
//     start and an optional suffix that must close it; both are stripped.
//   - STXETX: STX data ETX, optionally followed by a one-byte BCC/LRC.
//   - Binary: a header, a length field at a fixed offset (1 or 2 bytes, big or
//     little endian, counting a declared span), an optional trailer, and a
//     checksum or CRC (sum8, two's-complement sum8, xor8, CRC-16/MCRF4XX
//     (0x8408 reflected, the "CRC-16/CCITT" of many reader manuals),
//     CRC-16/X-25, CRC-16/MODBUS).
//
// New builds a Framer from a device profile's framing section (Config);
// NewDelimited, NewSTXETX and NewBinary build one from typed settings.
//
// Guarantees:
//   - Never a panic and never unbounded memory: each Framer allocates one
//     buffer at construction (about MaxLen plus the framing overhead) and
//     never grows it. Input that would make a frame longer than MaxLen is
//     rejected as Oversize and the framer resynchronises.
//   - Every byte fed is accounted for: it ends up in an emitted frame (or its
//     framing bytes, blank lines between EOL-terminated frames included), in
//     a Reject's byte count, or still buffered awaiting the rest of its
//     frame. Flush empties the buffer.
//   - Resynchronisation never skips a real frame that starts inside rejected
//     bytes: after a bad checksum, a bad length or a bad trailer the search
//     for the next frame starts again at the byte after the rejected frame's
//     first byte. Retries that fail inside the rejected frame are reported
//     as part of its Reject, so one damaged frame is one reject.
//   - The result does not depend on how the stream is chunked: feeding a
//     capture in one call or one byte at a time yields the same frames and
//     the same rejects, except that a Reject run may be reported in several
//     pieces (same kind, same total) when it arrives over several reads.
//   - Zero allocations per frame: frames are slices of the caller's chunk or
//     of the framer's buffer, and Reject details are constant strings.
//
// Sharp edges:
//   - A frame passed to emit is only valid until emit returns and must not
//     be modified: copy it to keep it.
//   - A Framer keeps state between Feeds; it is not safe for concurrent use,
//     and emit and reject must not call back into it. Use one per device.
//   - Without a prefix, a delimited framer cannot tell garbage from data:
//     noise just before a line becomes part of that line. Scanners are
//     reliable enough on USB, and the barcode parser rejects what is not a
//     valid symbol, but on a noisy RS-232 line prefer a prefix, STX/ETX with
//     a BCC, or AIM identifiers (which the parser requires at the start).
//   - A prefix (and STX) marks a frame start wherever it appears, so it must
//     never occur inside data: use a control character, not text.
//   - A binary frame whose header appears in garbage, with a plausible
//     length, holds back the frames behind it until enough bytes arrive to
//     check it (at most MaxLen). Call Flush when the line goes idle (a read
//     that times out) so nothing waits for bytes that will never come.
package framing
