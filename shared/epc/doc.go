// Package epc decodes and encodes EPC identifiers read from RFID tags, per
// the GS1 EPC Tag Data Standard (TDS): binary EPC memory (as hex) <-> EPC
// tag URI <-> pure-identity URI <-> GS1 keys and element strings.
//
// Why it exists: store edge agents read RFID tags at doors, shelves and
// self-checkouts and must turn the 96 or 198 bits in EPC memory into the
// same GTIN + serial that a barcode scan yields, so downstream services see
// one identity per item whatever the carrier.
//
// What it offers:
//   - SGTIN-96 and SGTIN-198 decoding and encoding, with partition and
//     filter values, numeric (96) and alphanumeric (198) serial rules and
//     URI percent-escaping (sgtin.go, uri.go);
//   - conversion of an SGTIN to and from a GTIN + serial, a GS1 element
//     string and a pure-identity or tag URI;
//   - decoding of the other fixed-layout GS1 schemes (SSCC-96, SGLN-96/195,
//     GRAI-96/170, GIAI-96/202, GSRN-96, GSRNP-96, GDTI-96/174, CPI-96,
//     SGCN-96, ITIP-110/212) and of GID-96 and USDOD-96 to their URIs and,
//     where defined, GS1 element strings (schemes.go);
//   - Decode, a front door that identifies the scheme from the header.
//
// Guarantees: decoders never panic on any input (they are fuzzed), reject
// bad headers, partitions, out-of-range fields and non-canonical serials
// with errors wrapping the sentinels in errors.go, and for every valid
// SGTIN tag Encode(Decode(hex)) reproduces the hex (modulo the padding
// noted below).
//
// Sharp edges:
//   - SGTIN-198 is 198 bits. Readers report it as 50 hex digits (200 bits)
//     or 52 (13 16-bit words of EPC memory); Decode accepts any zero
//     padding and Encode emits 52 digits.
//   - A GTIN alone does not say where its company prefix ends; converting
//     a GTIN to an SGTIN needs the prefix length from GS1's allocation
//     data, which this package does not look up.
//   - SGTIN-96 serials are integers below 2^38 without leading zeros; any
//     other serial needs SGTIN-198.
//   - The variable-length CPI-var and ADI-var schemes are recognised by
//     header but not decoded.
package epc
