// Package gs1 parses, validates and generates GS1 data as it arrives at a
// store edge agent from barcode scanners and QR/DataMatrix readers.
//
// Why it exists: every product scan in the platform is one of a handful of
// GS1 carriers (EAN/UPC, GS1-128, GS1 DataBar, GS1 DataMatrix/QR with
// Application Identifiers, or a GS1 Digital Link URI in a plain QR code).
// Downstream services want one normalised view: the GTIN-14, the ordered
// list of AI values, and a clear, machine-branchable error when the data is
// not valid GS1.
//
// What it offers:
//   - GTIN/SSCC/GLN mod-10 check digits and GTIN-14 normalisation
//     (checkdigit.go);
//   - the Application Identifier table with each AI's format, FNC1 rule,
//     Digital Link role and association rules (aitable.go, ai.go);
//   - element strings in bracketed "(01)...(10)..." form, in raw scanner
//     form with GS (0x1D) separators and in "^"-for-FNC1 form (parse.go),
//     with per-AI validation (validate.go, linters*.go) and optional cross-AI
//     association rules (associations.go);
//   - GS1 Digital Link URIs: parsing, generation and percent-escaping
//     (digitallink.go, uriescape.go), and recognition (not decoding) of
//     the withdrawn compressed form (dlcompress.go);
//   - typed values: dates with the GS1 century window and day-00 rule,
//     and decimal measures and amounts (values.go);
//   - AIM symbology identifiers as scanners transmit them (scan.go).
//
// Guarantees: parsers never panic on any input (they are fuzzed), never
// allocate unboundedly (inputs are capped, see MaxInputLen), and every
// failure is an *Error that wraps one of the sentinel errors (ErrSyntax,
// ErrUnknownAI, ErrLength, ErrCharset, ErrCheckDigit, ErrDate, ErrValue,
// ErrAssociation, ErrDigitalLink, ErrSymbology), so callers can use
// errors.Is and errors.As. A value accepted by the parsers re-encodes to a
// string that parses back to the same AIs.
//
// Sharp edges:
//   - Parsing validates each AI on its own. Cross-AI rules ("(21) needs
//     (01)", "(01) and (02) are exclusive", repeated AIs must agree) are
//     only applied when Parser.Associations is set or Validate is called,
//     because GS1 says they apply to the combined data of all carriers on an
//     item: a lone "(10)ABC" on a shelf label is legitimate input.
//   - The AI table follows a recent GS1 General Specifications release.
//     Older firmware may emit AIs that are now withdrawn, and newer AIs will
//     be reported as ErrUnknownAI unless Parser.PermitUnknownAIs is set.
//   - Dates carry two-digit years; AIValue.Dates resolves the century with
//     the GS1 sliding window relative to a caller-supplied reference time.
//   - Digital Link parsing follows the strict current standard by default
//     (no GTIN-8/12/13 in the path, no trailing slash, no convenience
//     alphas such as /gtin/); DLOptions relaxes each of those separately.
//   - No GS1 Company Prefix lookup is performed: "key" checks only verify
//     the shape of the prefix.
package gs1
