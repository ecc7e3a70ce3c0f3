// Package decode turns the payload of a UHF RFID reader's frame into tag
// reads (rfid.TagRead). A device profile names its decoder
// (rfid.decoder: a0-inventory); the framing package has already found the
// frame and checked its checksum, and hands over the payload: the frame
// without its header, checksum and trailer, length field included.
//
// Decoders:
//   - a0-inventory: the tag reports of the "UHF RFID Reader Serial Interface
//     Protocol" of readers built on the Impinj R2000 module (V3.x of the
//     protocol document; frames Head 0xA0, Len, Address, Cmd, Data, Check).
//     Real-time inventory (cmd 0x89), fast antenna switching (0x8A) and
//     customised session/target inventory (0x8B) report one tag per frame:
//     FreqAnt (frequency index << 2 | antenna 0-3), PC, EPC, RSSI (dBm =
//     value - 129). Many Chinese desktop and fixed readers speak it.
//   - bb-inventory: the notice frames of the Magic RF M100 / QM100 module
//     protocol ("BB Type Cmd PL Data Checksum 7E", the manual's "notice
//     frame" Type 0x02, Cmd 0x22, sent for single and multiple polling):
//     RSSI (signed dBm), PC, EPC and the tag's own CRC-16, used by many
//     small UART reader boards.
//
// Guarantee: a decoder never returns a wrong EPC from a frame it can
// parse. The EPC length comes from the tag's PC word and must match the
// frame exactly; bb-inventory also checks the tag's CRC-16 (CRC-16/GENIBUS
// over PC+EPC, as EPC Gen2 defines it). Anything inconsistent is
// ErrMalformed. Decoders never panic (they are fuzzed) and append to dst
// without other allocation than the EPC string. A tag notice whose RSSI is
// not negative reports RSSI 0 (unknown).
//
// Sharp edges:
//   - Reader and At are left zero: the caller (the agent) knows the device
//     name and the receive time.
//   - a0-inventory knows antennas 1 to 4 (the FreqAnt field); 8- and
//     16-port readers that flag the antenna group elsewhere report ports
//     5-8 as 1-4. RSSI bit 7 (a flag on some firmware) is ignored, and
//     firmware that appends phase bytes is refused (ErrMalformed): a 5-word
//     EPC with phase is the size of a 6-word EPC without, so guessing could
//     return a wrong EPC.
//   - bb-inventory reports antenna 1: the M100 is a single-port module.
//   - An EPC longer than the PC says (XPC words, or a reader appending TID)
//     is rejected, not trimmed.
package decode
