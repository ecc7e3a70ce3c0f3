// Package profile loads device profiles: the YAML files in
// firmware-configs/ that describe a model of barcode scanner or UHF RFID
// reader (its serial settings, how its byte stream is framed, what a frame
// means), so that supporting a new device is a file, not code.
//
// The agent's config names a profile by its file's stem (generic-line-scanner
// for firmware-configs/scanners/generic-line-scanner.yaml); Load finds it
// anywhere under the profiles directory, LoadAll checks every file (CI runs
// it over the shipped directory). firmware-configs/SCHEMA.md documents every
// key.
//
// Guarantees:
//   - A profile that loads is complete and consistent: every key is known
//     (a misspelt key is an error, not a silent default), every value has
//     the right type and range, the framing builds, the barcode separator
//     cannot be confused with the framing, an RFID decoder gets the frame
//     header it understands, and a poll command frames as exactly one
//     valid frame.
//   - A profile that does not load yields every problem at once, each an
//     *Error naming the file, the line, the key and the reason, wrapping
//     ErrInvalid; a missing profile is ErrNotFound and a stem used twice is
//     ErrDuplicate.
//   - ParseBarcode turns a scanner frame into a Scan (symbology, raw data,
//     GTIN, AIs, Digital Link) or an error wrapping ErrBadScan and the gs1
//     sentinel that says why (gs1.ErrCheckDigit, gs1.ErrUnknownAI...): never
//     a GTIN the symbol did not carry. DecodeTags does the same for RFID
//     frames through the decode package.
//
// Sharp edges:
//   - Keys are case-insensitive (viper lower-cases them); write them in
//     lower case as SCHEMA.md does.
//   - YAML reads 0xA0 and 13 unquoted as numbers; byte strings must be
//     quoted ("0xA0"), and the loader says so.
//   - With AIM identifiers, ]E0 data must be the 13-digit form (AIM's rule,
//     and the corpus's): scanners must send UPC-A and UPC-E as EAN-13. A
//     12-digit ]E0 is refused rather than padded, because an EAN-13 that
//     lost a digit on the line would pass as a UPC-A one time in ten.
//   - Without AIM identifiers (barcode.aim: false) the symbology is guessed
//     from the data. Eight digits are read as an EAN-8, so a UPC-E must be
//     transmitted expanded; a numeric Code 128 label that happens to be 8,
//     12, 13 or 14 digits long with a valid check digit is read as a GTIN,
//     and so is an EAN-13 that lost a digit and still checks as a UPC-A.
//     Prefer AIM identifiers on.
//   - Profiles are read once; a Profile is immutable after loading and safe
//     to share between devices, but each device needs its own framer
//     (NewFramer).
package profile
