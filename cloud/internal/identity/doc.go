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
// automatic links:
//
//	type      max   why
//	account   1     one web shop account per person; two are two people
//	loyalty   1     one active card; a second card is another member
//	phone     3     personal, work, an old number
//	email     5     personal, work, old and per-shop addresses
//	app       10    phones, tablets, reinstalls
//
// so an automatically linked customer holds at most 20 identifiers, and a
// value shared by strangers (a family address, a placeholder nobody
// blocked yet) joins at most that many of them. Which side wins is the
// linking rule below. An operator's manual link (RuleManual) is not held
// to the limits; a customer it took over a limit may still take on other
// types.
//
// # The graph
//
// An Observation is a set of identifiers seen together by one event, with
// its evidence (event id, store, device, HLC, rule, operator). The graph
// is a function of the set of live observations: Apply may get them in any
// order, duplicated, delayed and batched any way, and reaches the same
// customers and ids (property-tested against identitytest.Oracle, which
// recomputes from scratch). The rule is a replay by stamp (events.Stamp:
// HLC, then event id):
//
//   - Linking: each observation, in stamp order, takes its identifiers
//     that are not blocked, strongest first (Identifier.Compare). A pass
//     starts from the strongest left and adds every other one, in order,
//     whose customer (or the identifier alone, if it has none yet) fits
//     alongside what the pass holds: for every type both hold, together
//     no more than the limit. What fits becomes one customer; what does
//     not is left for the next pass, which does the same. So the customer
//     of the observation's strongest identifier wins: its earlier links
//     stand, and a weaker identifier that would take it over a limit
//     stays with the customer it had (a shared address stays with its
//     first card's holder; the new card founds a customer of its own with
//     the identifiers that fit it).
//   - Master ids: a link of identifiers no customer holds founds a
//     customer whose id is Policy.MasterID(its stamp, position of its
//     strongest identifier among the observation's), anchored on that
//     identifier: time-ordered (OrderedMasterID) for observations stamped
//     from Policy.OrderedSince on, MasterID for older ones. A
//     link of customers keeps the id of the one founded first (the
//     smallest founding stamp, then the smallest id); the others' ids
//     redirect to it. Every id ever minted resolves to the customer its
//     anchor belongs to (Resolve), so an id handed out by an intermediate
//     state (a late, older observation founded the customer instead)
//     still finds its customer.
//   - Clusters: identifiers connected through live observations, whether
//     the limits let them link or not. A late observation can change the
//     outcome only within its cluster, so Apply links an observation newer
//     than everything in its cluster at once, and replays the cluster for
//     an older one. The store loads a batch's clusters (Move.Cluster, the
//     id of the cluster's oldest observation) whole.
//
// # Exact unmerge
//
// Nothing is copied into a merged customer. Observations are the source
// of truth; an Unlink (HQ's unmerge, with its operator as evidence) marks
// one dead, and the graph is what the live ones make it: undoing the
// observation that merged two customers gives back exactly the customers,
// ids and members there were without it (Customer.Merges lists the
// observations to undo; a newer Unlink with Restore redoes one). Data is
// attributed to identifiers, never to a merged profile: a purchase, an
// attribute, a consent decision or a cart belongs to the Subject of the
// identifiers its event named (Policy.Subject; for an event addressed to
// a master id, to its Anchor), and a customer's data is the data of its
// identifiers. So splitting gives each side exactly its own. Every event
// naming a customer should be an observation too, so every subject is in
// a customer.
//
// # How the store applies a batch
//
// The store keeps the observations and unlinks (the evidence), and per
// identifier its customer, joining observation and cluster (Move); per
// master id its anchor (MasterChange). For a batch it loads into a new
// Graph the clusters of every identifier the batch's observations name
// and of every identifier of the observations its unlinks name: all their
// observations, live or not, and their unlinks (an Apply of what it
// loaded). Then it applies the batch and writes what Changes lists: Moves
// to the identifiers' rows, Masters to the master ids' rows (an id's
// redirect is its To), and Customers are the 360 views to refresh and the
// store caches to invalidate. Before all this, every observation goes
// through the erasure register (erasure.Register.Admit), so an erased
// person never comes back.
//
// Sharp edges: the policy is part of the replay; changing it changes what
// a replay of a cluster gives, so after a change the store rebuilds the
// clusters it affects. A later observation linking the two sides of an
// undone merge again merges them again: it is new evidence; to keep them
// apart for good, block the value that links them.
package identity
