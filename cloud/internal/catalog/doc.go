// Package catalog is the hub's product catalog model: variants (one SKU
// each) grouped into products, the rules a variant must satisfy, and
// streaming readers for the CSV and JSON Lines files that
// `omnictl catalog import` and the hub API accept. It is pure: it reads an
// io.Reader and calls back; storing variants is the caller's job.
//
// Guarantees:
//
//   - Every variant Parse hands to its callback has passed Validate: a
//     well-formed SKU and product id, at least one GTIN with a correct check
//     digit normalised to GTIN-14, a price in exact minor units, and so on.
//     No two variants handed out by one Parse call share a SKU or a GTIN.
//   - Every rejected row is reported with the line it starts on (1-based,
//     counting the CSV header and blank lines), the field, the offending
//     value and a reason; a row with several bad fields gets one RowError
//     per field.
//   - Prices are decimal text converted to minor units by string
//     arithmetic, never through float64: "19.99" EUR is 1999, "0.005" EUR
//     is rejected rather than rounded, and "1500" JPY is 1500.
//   - A CSV column or JSONL key that the format does not know is an error
//     naming it, so a typo ("colur") never drops data silently.
//
// All-or-nothing imports. Parse streams, so it cannot know that line
// 90,000 is bad before it has handed out line 1. In AllOrNothing mode (the
// default) the callback sees valid rows only until the first bad row; from
// then on Parse only validates, to report every error, and finally returns
// an error wrapping ErrInvalidRows. The caller must therefore stage what
// the callback receives (a transaction, a temporary table, a Spool) and
// commit only when Parse returns nil. In Partial mode bad rows are skipped and
// reported, every good row reaches the callback, and Parse returns nil: the
// Report says how partial the import was.
//
// Sharp edges:
//
//   - Duplicate detection keeps every accepted SKU and GTIN of one Parse
//     call in memory (tens of bytes each): fine for millions of variants,
//     but the memory is proportional to the file, not constant.
//   - Only rows that were accepted count as "already seen": a duplicate of
//     a rejected row is not itself a duplicate.
//   - JSONL lines and CSV records are limited to Options.MaxLineBytes. A
//     long JSONL line is one bad row; a long CSV record (most likely a
//     stray quote that makes the rest of the file one record) stops Parse
//     with ErrRecordTooLong, since no later record can be found.
//   - In JSONL, a key given twice in one object keeps its last value (as
//     encoding/json does).
//   - Product fields (name, brand, category) are taken from the first
//     variant of each product in Group; variants are not checked for
//     agreeing with each other.
package catalog

//go:generate go test -run TestSampleCatalogGolden -update .
