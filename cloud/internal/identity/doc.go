// Package identity holds the hub's rules for knowing one customer across
// every channel: what an identifier is, when two identifiers name the same
// person, and which customer each identifier belongs to. It is pure (no
// SQL, no clock, no I/O): the store persists what it computes.
//
// # Identifiers
//
// Five types, as named in the identify event's body, strongest first (the
// priority order used below): account (the web shop's account id), loyalty
// (a loyalty card number), phone, email, app (an app install id). The
// strongest is the best proof of a person: an account is behind a
// password; a card can be lent; a phone is usually personal and verified;
// an e-mail is typed at tills and shared by families; an app install is a
// device, and devices are shared.
//
// Normalize makes equal what is equal:
//
//   - email: trimmed, lower-cased whole (RFC 5321 lets a server tell case
//     in the local part; no provider does, and shoppers type any case);
//     dot-atom local parts only (quoted ones are refused), a host name of
//     two labels or more; then the provider rules below.
//   - phone: E.164 through libphonenumber (github.com/nyaruka/phonenumbers).
//     A number without a country code is read in the caller's region (the
//     capturing store's or web shop's country, from stored configuration so
//     every replica reads alike). Only numbers valid in an allocated range
//     are kept.
//   - loyalty: trimmed, print spacing removed, upper-cased; letters,
//     digits, '-', '_', '.', '/'; at most 64.
//   - account, app: trimmed, printable ASCII without spaces, at most 128;
//     case kept (these ids are minted by systems that may tell case).
//
// The e-mail provider rules apply only where the provider documents them:
//
//	provider                                     dots      +tag      domain
//	gmail.com, googlemail.com                    ignored   dropped   gmail.com
//	outlook.com, hotmail.com, live.com, msn.com  kept      dropped   as is
//	icloud.com, me.com, mac.com                  kept      dropped   as is
//	fastmail.com, fastmail.fm                    kept      dropped   as is
//	protonmail.com, protonmail.ch, proton.me,    kept      dropped   as is
//	pm.me
//	every other domain                           kept      kept      as is
//
// Conservative on purpose: a rule applied where it does not hold fuses two
// people; a rule missing only keeps one person's two spellings apart until
// something else links them. Internationalised domains are kept as given
// (U-labels lower-cased, A-labels as is): the two forms of one domain do
// not match.
//
// # Blocklist
//
// A blocked identifier never links anything (Policy.Blocked): it is left
// out of every observation, so a shared in-store tablet or a cashier's
// placeholder never fuses strangers. Built in: for loyalty, account and
// app, the placeholder words (null, nil, none, undefined, -1, 0, n/a,
// unknown, anonymous, guest, test, ...), values with no letter or digit,
// and one character repeated (0000, XXXX, the all-zero UUID); for e-mail,
// placeholder local parts (test, noreply, none, nomail, guest, ...), the
// example and made-up domains (example.com, test.com, ...), the .invalid,
// .localhost and .local domains, and local parts of one character
// repeated three times or more; for phones, a national number of one
// digit repeated or a run (123456789, 9876543210) and the North American
// 555-01XX numbers. On top of these, Policy.Blocklist per type: a store's
// house loyalty card, a kiosk's app install id, the shop's own address.
//
// # Limits per type
//
// A customer holds at most Policy.Max identifiers of each type through
// automatic links (defaults: account 1, loyalty 1, phone 3, email 5,
// app 10, so at most 20 identifiers in all). Which side wins is described
// with the graph below.
package identity
