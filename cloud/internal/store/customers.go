package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/profiles"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Customers at the hub (the appliers apply_identity.go, apply_profiles.go,
// apply_consent.go, apply_purchases.go and apply_erasure.go; the reads in
// customer_reads.go).
//
// The identity graph is kept over digests: an identifier enters the graph
// as identity.Identifier{Type, Value: its keyed digest}, so the graph, the
// evidence and every index hold no personal data; only cust_identifiers
// (and an erasure's rows until every store answered) hold the raw value,
// sealed. Data (attributes, consent, purchases, carts, interests) is
// attributed to its event's subject identifier (identity.Policy.Subject),
// by digest; a customer's data is the data of its identifiers, so a merge
// shows it all and an unmerge gives each side exactly its own.
//
// Every write to the customer tables happens under one lock per hub
// schema (customersLock: a PostgreSQL transaction advisory lock), taken by
// a batch only when it names a customer, after its device rows: a batch
// loads whole the graph clusters it touches, and two replicas must not
// both extend one cluster from the same snapshot.

// Errors callers branch on.
var (
	// ErrNoCustomerKeys is returned when no keyring was set
	// (SetCustomerKeys): customers' data cannot be kept without one.
	ErrNoCustomerKeys = errors.New("store: no customer data keys")
)

// customersLockClass is the first key of the customers' advisory lock
// ("omcu"); the second is the schema's hash, as for the catalog.
const customersLockClass int32 = 0x6f6d6375

// SetCustomerKeys sets the keyring customers' identifiers are indexed and
// sealed with (the hub's --customer-keys file). Set it before applying.
func (s *Store) SetCustomerKeys(k *pii.Keyring) { s.custKeys = k }

// CustomerKeys returns the keyring set by SetCustomerKeys.
func (s *Store) CustomerKeys() *pii.Keyring { return s.custKeys }

// lockCustomers takes the customers' lock for the rest of tx.
func (s *Store) lockCustomers(ctx context.Context, tx *sql.Tx) error {
	if !s.d.pg() {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", customersLockClass); err != nil {
		return fmt.Errorf("customers lock: %w", err)
	}
	return nil
}

// custID is one identifier as an event named it: normalised, and its
// digest.
type custID struct {
	id     identity.Identifier
	digest string
	// enc is the raw value sealed ahead, while the batch is prepared
	// (identify events, which bring most new identifiers): the apply,
	// which holds the customers' lock, need not seal it. nil: sealed
	// when its row is written (sealedValue).
	enc []byte
}

// sealedValue is c's raw value sealed for its cust_identifiers row: the
// one sealed ahead, unless the keys changed since.
func (s *Store) sealedValue(c custID) []byte {
	if c.enc != nil && !s.custKeys.Stale(c.enc) {
		return c.enc
	}
	return s.custKeys.SealString(c.id.Value, sealAD("cust_identifiers", c.digest))
}

// graphID is the identifier the graph holds for it.
func (c custID) graphID() identity.Identifier {
	return identity.Identifier{Type: c.id.Type, Value: c.digest}
}

// custRead is a customer-naming event as the customer appliers see it.
type custRead struct {
	kind          events.Kind
	stamp         events.Stamp
	store, device string
	// ids are its identifiers that are not blocked, in Compare order.
	ids []custID
	// obs is its observation over digests (no identifiers when every one
	// was blocked).
	obs identity.Observation
	// subject is the digest its data is attributed to ("" when none).
	subject string
	// streamSeq is the events stream's message it came in (0: none), set
	// in the transaction (setStreamSeqs): what an erasure deletes from
	// the stream.
	streamSeq int64

	update   *profiles.Update
	decision *consent.Decision
	purchase *purchaseRead
	erase    *events.Erase
}

// digests returns r's digests.
func (r *custRead) digests() []string {
	out := make([]string, len(r.ids))
	for i, c := range r.ids {
		out[i] = c.digest
	}
	return out
}

// resolveIdentifiers normalises a body's identifiers, drops the blocked
// ones and digests the rest. An invalid identifier refuses the event: a
// till sending a malformed card number should hear of it (dead letter)
// rather than link a half of what it saw.
func (s *Store) resolveIdentifiers(ref events.CustomerRef, region string) ([]custID, error) {
	if s.custKeys == nil {
		return nil, ErrNoCustomerKeys
	}
	ids, err := identity.ParseSet(ref, strings.ToUpper(region))
	if err != nil {
		var ke *identity.KeyError
		if errors.As(err, &ke) {
			// The value is personal data: name the key and the rule only.
			return nil, fmt.Errorf("identifier %s: %w", ke.Key, errors.Unwrap(ke.Err))
		}
		return nil, err
	}
	out := make([]custID, 0, len(ids))
	for _, id := range ids {
		if s.custPolicy.Blocked(id) {
			continue
		}
		out = append(out, custID{id: id, digest: s.custKeys.Digest(id)})
	}
	return out, nil
}

// newCustRead builds the read of an event naming ids, with rule as its
// evidence.
func (s *Store) newCustRead(env *events.Envelope, ids []custID, rule string) *custRead {
	r := &custRead{kind: env.Kind, stamp: env.Stamp(), store: env.Origin.Store, device: env.Origin.Device, ids: ids}
	r.obs = identity.Observation{Stamp: r.stamp, Evidence: identity.Evidence{Store: r.store, Device: r.device, Rule: rule}}
	var gids []identity.Identifier
	if len(ids) > 0 {
		gids = make([]identity.Identifier, 0, len(ids))
	}
	for _, c := range ids {
		gids = append(gids, c.graphID())
	}
	r.obs.Identifiers = gids
	if sub, ok := s.custPolicy.Subject(gids); ok {
		r.subject = sub.Value
	}
	return r
}

// readCustomer reads env's customer part: nil when env names no customer.
func (s *Store) readCustomer(env *events.Envelope) (*custRead, error) {
	switch env.Kind {
	case events.KindIdentify:
		var b events.Identify
		if err := events.UnmarshalIdentify(env.Data, &b); err != nil {
			return nil, fmt.Errorf("identify: %w", err)
		}
		ids, err := s.resolveIdentifiers(b.Identifiers, b.Region)
		if err != nil {
			return nil, fmt.Errorf("identify: %w", err)
		}
		for i := range ids {
			ids[i].enc = s.custKeys.SealString(ids[i].id.Value, sealAD("cust_identifiers", ids[i].digest))
		}
		rule := b.Rule
		if rule == "" || rule == identity.RuleManual {
			rule = identity.RuleIdentify
		}
		return s.newCustRead(env, ids, rule), nil
	case events.KindUpdate:
		var b events.Update
		if err := json.Unmarshal(env.Data, &b); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		ids, err := s.resolveIdentifiers(b.Customer, b.Region)
		if err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		u, err := profiles.ParseUpdate(env.Stamp(), b.Fields)
		if err != nil {
			var fe *profiles.FieldError
			if errors.As(err, &fe) {
				return nil, fmt.Errorf("update: field %s: %w", fe.Field, errors.Unwrap(fe.Err))
			}
			return nil, fmt.Errorf("update: %w", err)
		}
		r := s.newCustRead(env, ids, string(events.KindUpdate))
		r.update = &u
		return r, nil
	case events.KindConsent:
		var b events.Consent
		if err := json.Unmarshal(env.Data, &b); err != nil {
			return nil, fmt.Errorf("consent: %w", err)
		}
		ids, err := s.resolveIdentifiers(b.Customer, b.Region)
		if err != nil {
			return nil, fmt.Errorf("consent: %w", err)
		}
		d, err := decisionOf(b, env.Stamp(), consent.Evidence{Store: env.Origin.Store, Device: env.Origin.Device, Source: b.Source, TextVersion: b.TextVersion})
		if err != nil {
			return nil, err
		}
		r := s.newCustRead(env, ids, string(events.KindConsent))
		r.decision = &d
		return r, nil
	case events.KindErase:
		var b events.Erase
		if err := json.Unmarshal(env.Data, &b); err != nil {
			return nil, fmt.Errorf("erase: %w", err)
		}
		ids, err := s.resolveIdentifiers(b.Customer, b.Region)
		if err != nil {
			return nil, fmt.Errorf("erase: %w", err)
		}
		// An erase request is no evidence of a link: its identifiers name
		// the customer to erase, and are not observed together.
		r := s.newCustRead(env, ids, string(events.KindErase))
		r.obs.Identifiers = nil
		r.erase = &b
		return r, nil
	case events.KindSale, events.KindReturn:
		ref := env.CustomerRef()
		if ref == nil {
			return nil, nil
		}
		ids, err := s.resolveIdentifiers(ref, "")
		if err != nil {
			return nil, fmt.Errorf("%s customer: %w", env.Kind, err)
		}
		p, err := readPurchase(env)
		if err != nil {
			return nil, err
		}
		r := s.newCustRead(env, ids, string(env.Kind))
		r.purchase = p
		return r, nil
	}
	return nil, nil
}

// decisionOf turns a consent body into a decision.
func decisionOf(b events.Consent, stamp events.Stamp, ev consent.Evidence) (consent.Decision, error) {
	st, err := consent.ParseStatus(b.Granted, b.Status)
	if err != nil {
		return consent.Decision{}, fmt.Errorf("consent: %w", err)
	}
	d := consent.Decision{Purpose: consent.Purpose(b.Purpose), Channel: consent.Channel(b.Channel), Status: st, Stamp: stamp, Evidence: ev}
	if b.ExpiresAt != nil {
		d.Expires = b.ExpiresAt.UnixMilli()
	}
	if err := d.Validate(); err != nil {
		return consent.Decision{}, fmt.Errorf("consent: %w", err)
	}
	return d, nil
}

// custReads returns the batch's customer reads (identity applier's), by
// item, parsed once.
func (t *applyTx) custReads() []itemRead {
	if t.cust.reads == nil {
		t.cust.reads = t.readsOf(identityApplier{})
	}
	return t.cust.reads
}

// custLive returns the customer reads of kind ks that were not scrubbed.
func (t *applyTx) custLive(ks ...events.Kind) []*custRead {
	var out []*custRead
	for _, r := range t.custReads() {
		if t.cust.scrubbed[r.item] {
			continue
		}
		cr := r.v.(*custRead)
		if len(ks) == 0 || slices.Contains(ks, cr.kind) {
			out = append(out, cr)
		}
	}
	return out
}

// custTx is the customer appliers' share of a batch's transaction.
type custTx struct {
	reads    []itemRead
	scrubbed map[int]bool
	// customers are the customers whose views changed (for caches).
	customers []string
}

// stampOf reads a stored stamp.
func stampOf(packed int64, id string) events.Stamp {
	return events.Stamp{HLC: hlc.Unpack(packed), ID: id}
}

// hubStamp is a stamp for a change HQ makes (an unmerge, an erasure):
// the hub's clock and a new id.
func (s *Store) hubStamp(id string) events.Stamp {
	return events.Stamp{HLC: hlc.Timestamp{Wall: s.now().UnixMilli()}, ID: id}
}

// encodeObsIDs renders an observation's graph identifiers as stored.
func encodeObsIDs(ids []identity.Identifier) string {
	// One allocation: written for every observation.
	n := 0
	for _, id := range ids {
		n += len(id.Type) + 1 + len(id.Value) + 1
	}
	b := make([]byte, 0, n)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(append(append(b, id.Type...), '='), id.Value...)
	}
	return string(b)
}

func decodeObsIDs(s string) []identity.Identifier {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, " ")
	out := make([]identity.Identifier, 0, len(parts))
	for _, p := range parts {
		t, v, _ := strings.Cut(p, "=")
		out = append(out, identity.Identifier{Type: identity.Type(t), Value: v})
	}
	return out
}

// Reads keyed by a batch's rowset: on PostgreSQL they probe each key
// through CROSS JOIN LATERAL, so each is an index lookup whatever the
// planner estimates (a plain join chose hash joins over whole tables, a
// cost that grows with the tables: 0.5 s a batch at 60,000
// identifiers); SQLite's planner loops over the keys by itself. The
// subquery ends in OFFSET 0, which keeps PostgreSQL from flattening it
// back into a join: without statistics (a new hub, a restored or
// upgraded database before its ANALYZE) it did, and hashed whole tables
// again (TestCustomerStatementPlans). probe writes the common case.

// probe is the FROM clause reading table (as alias) for each key of the
// rowset r whose column col equals key (an expression over r's columns):
// on PostgreSQL an index probe per key, see above.
func (s *Store) probe(r, table, alias, col, key string) string {
	if s.d.pg() {
		return r + ` CROSS JOIN LATERAL (SELECT * FROM ` + table + ` WHERE ` + col + ` = ` + key + ` OFFSET 0) ` + alias
	}
	return table + ` ` + alias + ` JOIN ` + r + ` ON ` + alias + `.` + col + ` = ` + key
}

// dbq is a transaction or a database: what reads run on.
type dbq interface {
	execer
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Where the graph's observations are found. Every observation carries a
// cluster label (cust_observations.cluster): a live one, the label its
// identifiers share (Move.Cluster), so a batch loads a cluster's
// observations with one probe of its label. An observation HQ unmerged
// (cust_unlinks) is dead, and its identifiers may since have drifted into
// several clusters: it is also posted under each of them (cust_postings,
// written by Unmerge) and found from any. Postings were once written for
// every observation; each event then cost a random index entry per
// identifier, the larger part of the server's identify work at millions
// of identifiers, where a new shopper's label is its own event id, in
// time order.

// graphLoad is a graph loaded for a change, with what the store holds of
// it: what keeps the observations' labels right once it changes
// (writeGraphChanges).
type graphLoad struct {
	g *identity.Graph
	// cluster is the stored cluster label of every loaded digest the hub
	// holds a cust_identifiers row of; a digest the load was given that
	// is not here has no row.
	cluster map[string]string
	// obs are the loaded observations' stored labels and identifiers.
	obs map[string]loadedObs
}

type loadedObs struct {
	cluster string
	ids     []identity.Identifier
}

// held reports whether the hub held a row of digest d before the change.
func (l *graphLoad) held(d string) bool {
	_, ok := l.cluster[d]
	return ok
}

// labelsAfter returns the cluster label of every digest l held or ch
// moved, once ch is written.
func (l *graphLoad) labelsAfter(ch identity.Changes) map[string]string {
	out := make(map[string]string, len(l.cluster)+len(ch.Moves))
	maps.Copy(out, l.cluster)
	for _, m := range ch.Moves {
		if m.Removed {
			delete(out, m.Identifier.Value)
			continue
		}
		out[m.Identifier.Value] = m.Cluster
	}
	return out
}

// obsLabel is the label of an observation naming ids: that of its first
// identifier with one ("" when none has: a dead observation outside the
// loaded clusters keeps the one it has).
func obsLabel(ids []identity.Identifier, labels map[string]string) string {
	for _, id := range ids {
		if c := labels[id.Value]; c != "" {
			return c
		}
	}
	return ""
}

// relabelObservations writes the labels of the loaded observations whose
// identifiers labels moved to another cluster: a merge relabels the
// younger cluster's, a split one side's.
func (s *Store) relabelObservations(ctx context.Context, tx dbq, l *graphLoad, labels map[string]string) error {
	rs := newRowset(text("event_id"), text("cluster"))
	for _, id := range sortedKeys(keysOf(l.obs)) {
		o := l.obs[id]
		if c := obsLabel(o.ids, labels); c != "" && c != o.cluster {
			rs.add(id, c)
		}
	}
	err := s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `UPDATE cust_observations SET cluster = r.cluster FROM ` + r + ` WHERE cust_observations.event_id = r.event_id`
	})
	if err != nil {
		return fmt.Errorf("observations' clusters: %w", err)
	}
	return nil
}

// loadGraph loads into a new graph, whole, the clusters of digests and of
// the identifiers of observations obsIDs, and the unlinks naming those
// observations or obsIDs (identity.Graph's contract for a partial graph).
func (s *Store) loadGraph(ctx context.Context, q dbq, digests, obsIDs []string) (*identity.Graph, error) {
	l, err := s.loadGraphRows(ctx, q, digests, obsIDs, nil)
	if err != nil {
		return nil, err
	}
	return l.g, nil
}

// loadGraphRows is loadGraph that also returns what the store holds of
// what it loaded, for a change to be written. absent are digests known
// to have no row (digestsAbsent): they are not looked up.
func (s *Store) loadGraphRows(ctx context.Context, q dbq, digests, obsIDs []string, absent map[string]bool) (*graphLoad, error) {
	g, err := identity.NewGraph(s.graphPolicy())
	if err != nil {
		return nil, err
	}
	l := &graphLoad{g: g, cluster: map[string]string{}, obs: map[string]loadedObs{}}
	set := make(map[string]bool, len(digests))
	for _, d := range digests {
		set[d] = true
	}
	if len(obsIDs) > 0 {
		rs := newRowset(text("event_id"))
		for _, id := range sortedUnique(obsIDs) {
			rs.add(id)
		}
		err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
			return `SELECT o.ids FROM cust_observations o JOIN ` + r + ` ON o.event_id = r.event_id`
		}, func(rows *sql.Rows) error {
			var ids string
			if err := rows.Scan(&ids); err != nil {
				return err
			}
			for _, id := range decodeObsIDs(ids) {
				set[id.Value] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load observations' identifiers: %w", err)
		}
	}
	if len(set) == 0 {
		return l, nil
	}
	// Which of the digests the hub holds, and their clusters. Only those
	// can have observations: every identifier of a live observation is in
	// a customer, and a row is written for each identifier that joins one
	// (and deleted only with its observations forgotten, by an erasure).
	// So a batch of shoppers new to the hub costs one probe.
	ds := newRowset(text("digest"))
	for _, d := range sortedKeys(set) {
		if !absent[d] {
			ds.add(d)
		}
	}
	labels := map[string]bool{}
	scanIdent := func(rows *sql.Rows) error {
		var d, c string
		if err := rows.Scan(&d, &c); err != nil {
			return err
		}
		l.cluster[d] = c
		if c != "" {
			labels[c] = true
		}
		return nil
	}
	err = s.queryRows(ctx, q, ds, "r", func(a *args, r string) string {
		if s.d.pg() {
			return `SELECT i.digest, i.cluster FROM ` + r + ` CROSS JOIN LATERAL (SELECT digest, cluster FROM cust_identifiers WHERE digest_key(digest) = digest_key(r.digest) OFFSET 0) i`
		}
		return `SELECT i.digest, i.cluster FROM cust_identifiers i JOIN ` + r + ` ON i.digest = r.digest`
	}, scanIdent)
	if err != nil {
		return nil, fmt.Errorf("load identifiers: %w", err)
	}
	ls := newRowset(text("cluster"))
	for _, c := range sortedKeys(labels) {
		ls.add(c)
	}
	err = s.queryRows(ctx, q, ls, "r", func(a *args, r string) string {
		return `SELECT m.digest, m.cluster FROM ` + s.probe(r, "cust_identifiers", "m", "cluster", "r.cluster")
	}, scanIdent)
	if err != nil {
		return nil, fmt.Errorf("load clusters: %w", err)
	}
	if len(l.cluster) == 0 && len(obsIDs) == 0 {
		return l, nil
	}
	// Every observation naming them, live or not: the live ones by their
	// clusters' labels, the dead ones by their postings.
	obs := map[string]identity.Observation{}
	scanObs := func(rows *sql.Rows) error {
		var (
			id, ids, cluster string
			h                int64
			ev               identity.Evidence
		)
		if err := rows.Scan(&id, &h, &ids, &ev.Store, &ev.Device, &ev.Rule, &ev.Operator, &cluster); err != nil {
			return err
		}
		o := identity.Observation{Stamp: stampOf(h, id), Identifiers: decodeObsIDs(ids), Evidence: ev}
		obs[id] = o
		l.obs[id] = loadedObs{cluster: cluster, ids: o.Identifiers}
		return nil
	}
	err = s.queryRows(ctx, q, ls, "r", func(a *args, r string) string {
		return `SELECT o.event_id, o.hlc, o.ids, o.store, o.device, o.rule, o.operator, o.cluster
FROM ` + s.probe(r, "cust_observations", "o", "cluster", "r.cluster") + ` WHERE o.forgotten = 0`
	}, scanObs)
	if err != nil {
		return nil, fmt.Errorf("load observations: %w", err)
	}
	// Postings exist only for unmerged observations: most hubs have none
	// and skip the probe.
	somePosted, err := s.anyRow(ctx, q, "cust_postings")
	if err != nil {
		return nil, err
	}
	if somePosted && len(l.cluster) > 0 {
		ds = newRowset(text("digest"))
		for _, d := range sortedKeys(keysOf(l.cluster)) {
			ds.add(d)
		}
		err = s.queryRows(ctx, q, ds, "r", func(a *args, r string) string {
			if s.d.pg() {
				return `SELECT o.event_id, o.hlc, o.ids, o.store, o.device, o.rule, o.operator, o.cluster FROM ` + r + `
CROSS JOIN LATERAL (SELECT event_id FROM cust_postings WHERE digest = r.digest OFFSET 0) p
CROSS JOIN LATERAL (SELECT * FROM cust_observations WHERE event_id = p.event_id AND forgotten = 0 OFFSET 0) o`
			}
			return `SELECT o.event_id, o.hlc, o.ids, o.store, o.device, o.rule, o.operator, o.cluster
FROM cust_postings p JOIN ` + r + ` ON p.digest = r.digest JOIN cust_observations o ON o.event_id = p.event_id WHERE o.forgotten = 0`
		}, scanObs)
		if err != nil {
			return nil, fmt.Errorf("load unmerged observations: %w", err)
		}
	}
	var b identity.Batch
	for _, o := range obs {
		b.Observations = append(b.Observations, o)
	}
	slices.SortFunc(b.Observations, func(x, y identity.Observation) int { return x.Stamp.Compare(y.Stamp) })
	// Unmerges are rare: most batches find none at all and skip the probe.
	some, err := s.anyRow(ctx, q, "cust_unlinks")
	if err != nil {
		return nil, err
	}
	if some {
		// The unlinks of the loaded observations, and of those named.
		named := slices.Concat(sortedKeys(keysOf(obs)), obsIDs)
		us := newRowset(text("observation"))
		for _, n := range sortedUnique(named) {
			us.add(n)
		}
		seen := map[string]bool{}
		err = s.queryRows(ctx, q, us, "r", func(a *args, r string) string {
			return `SELECT u.id, u.observation, u.hlc, u.operator, u.reason, u.restore FROM ` + s.probe(r, "cust_unlinks", "u", "observation", "r.observation")
		}, func(rows *sql.Rows) error {
			var (
				u       identity.Unlink
				id      string
				h       int64
				restore int64
			)
			if err := rows.Scan(&id, &u.Observation, &h, &u.Operator, &u.Reason, &restore); err != nil {
				return err
			}
			u.Stamp, u.Restore = stampOf(h, id), restore != 0
			if !seen[id] {
				seen[id] = true
				b.Unlinks = append(b.Unlinks, u)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load unlinks: %w", err)
		}
	}
	if _, err := g.Apply(b); err != nil {
		return nil, fmt.Errorf("rebuild identity graph: %w", err)
	}
	return l, nil
}

// graphPolicy is the policy the hub's graphs are loaded with: its
// policy, minting master ids as the hub does (loadMasterIDs).
func (s *Store) graphPolicy() identity.Policy {
	p := s.custPolicy
	p.OrderedSince = s.custOrderedSince
	return p
}

// loadMasterIDs reads from when the hub's new customers get time-ordered
// master ids (identity.Policy.MasterID): the first stamp after every
// observation it held when it started minting them, so that the
// customers founded before keep their ids when their clusters are
// replayed.
func (s *Store) loadMasterIDs(ctx context.Context) error {
	if err := s.r.QueryRowContext(ctx, `SELECT ordered_since FROM cust_master_ids WHERE id = 1`).Scan(&s.custOrderedSince); err != nil {
		return fmt.Errorf("store: master ids: %w", err)
	}
	return nil
}

// mastersAnchoredOn returns the master ids anchored on any of digests:
// the ids their customers were ever known by. A master id is minted by
// the observation that founded its customer, which names its anchor, so
// they are found from the observations naming digests (no index of
// anchors: it cost every new customer a random entry).
func (s *Store) mastersAnchoredOn(ctx context.Context, q dbq, digests []string) ([]string, error) {
	naming, err := s.observationsNaming(ctx, q, digests)
	if err != nil {
		return nil, err
	}
	p := s.graphPolicy()
	rs := newRowset(text("id"), text("anchor"))
	seen := map[string]bool{}
	for _, n := range naming {
		if n.pos < 0 {
			continue
		}
		// Either rule might have minted it (the cut-over is by stamp):
		// both are probed.
		for _, id := range []string{p.MasterID(stampOf(n.hlc, n.event), n.pos), identity.MasterID(n.event, n.pos)} {
			if !seen[id] {
				seen[id] = true
				rs.add(id, n.digest)
			}
		}
	}
	var out []string
	err = s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		return `SELECT m.id FROM cust_masters m JOIN ` + r + ` ON m.id = r.id WHERE m.anchor = r.anchor`
	}, appendScanned(&out))
	if err != nil {
		return nil, fmt.Errorf("master ids anchored: %w", err)
	}
	// And those whose founding observation an erasure forgot
	// (keepOrphanMasters).
	ds := newRowset(text("digest"))
	for _, d := range sortedUnique(digests) {
		ds.add(d)
	}
	err = s.queryRows(ctx, q, ds, "r", func(a *args, r string) string {
		return `SELECT o.id FROM cust_orphan_masters o JOIN ` + r + ` ON o.anchor = r.digest`
	}, appendScanned(&out))
	if err != nil {
		return nil, fmt.Errorf("master ids anchored: %w", err)
	}
	return sortedUnique(out), nil
}

// keepOrphanMasters records the master ids that observations about to be
// forgotten founded on identifiers that stay (those not in erased): once
// forgotten, an observation names no identifier, and mastersAnchoredOn
// would no longer find them when their own customer is erased.
func (s *Store) keepOrphanMasters(ctx context.Context, tx dbq, obsIDs, erased []string) error {
	gone := map[string]bool{}
	for _, d := range erased {
		gone[d] = true
	}
	os := newRowset(text("k"))
	for _, id := range obsIDs {
		os.add(id)
	}
	p := s.graphPolicy()
	rs := newRowset(text("id"), text("anchor"))
	err := s.queryRows(ctx, tx, os, "r", func(a *args, r string) string {
		return `SELECT o.event_id, o.ids, o.hlc FROM cust_observations o JOIN ` + r + ` ON o.event_id = r.k WHERE o.forgotten = 0`
	}, func(rows *sql.Rows) error {
		var id, ids string
		var h int64
		if err := rows.Scan(&id, &ids, &h); err != nil {
			return err
		}
		for pos, x := range decodeObsIDs(ids) {
			if gone[x.Value] {
				continue
			}
			for _, m := range []string{p.MasterID(stampOf(h, id), pos), identity.MasterID(id, pos)} {
				rs.add(m, x.Value)
			}
		}
		return nil
	})
	if err != nil || rs.len() == 0 {
		return err
	}
	return s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO cust_orphan_masters (anchor, id) SELECT m.anchor, m.id FROM cust_masters m JOIN ` + r + ` ON m.id = r.id
WHERE m.anchor = r.anchor ORDER BY m.anchor, m.id ON CONFLICT DO NOTHING`
	})
}

// observationNaming is one observation naming one identifier: its stamp,
// store, and the identifier's position in its canonical identifiers.
type observationNaming struct {
	event, digest, store string
	hlc                  int64
	pos                  int
}

// observationsNaming returns the observations naming any of digests, live
// or dead (not forgotten), once per digest they name: those in the
// digests' clusters whose identifiers name one, and those posted under
// one (unmerged).
func (s *Store) observationsNaming(ctx context.Context, q dbq, digests []string) ([]observationNaming, error) {
	want := map[string]bool{}
	ds := newRowset(text("digest"))
	for _, d := range sortedUnique(digests) {
		want[d] = true
		ds.add(d)
	}
	labels := map[string]bool{}
	err := s.queryRows(ctx, q, ds, "r", func(a *args, r string) string {
		return `SELECT i.cluster FROM cust_identifiers i JOIN ` + r + ` ON ` + s.d.identKey("i.digest") + ` = ` + s.d.identKey("r.digest") + ` WHERE i.cluster <> ''`
	}, func(rows *sql.Rows) error {
		var c string
		if err := rows.Scan(&c); err != nil {
			return err
		}
		labels[c] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observations naming: clusters: %w", err)
	}
	seen := map[[2]string]bool{}
	var out []observationNaming
	ls := newRowset(text("cluster"))
	for _, c := range sortedKeys(labels) {
		ls.add(c)
	}
	err = s.queryRows(ctx, q, ls, "r", func(a *args, r string) string {
		return `SELECT o.event_id, o.ids, o.store, o.hlc FROM ` + s.probe(r, "cust_observations", "o", "cluster", "r.cluster") + ` WHERE o.forgotten = 0`
	}, func(rows *sql.Rows) error {
		var id, ids, st string
		var h int64
		if err := rows.Scan(&id, &ids, &st, &h); err != nil {
			return err
		}
		for i, x := range decodeObsIDs(ids) {
			if k := [2]string{id, x.Value}; want[x.Value] && !seen[k] {
				seen[k] = true
				out = append(out, observationNaming{event: id, digest: x.Value, store: st, hlc: h, pos: i})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observations naming: %w", err)
	}
	if some, err := s.anyRow(ctx, q, "cust_postings"); err != nil || !some {
		return out, err
	}
	err = s.queryRows(ctx, q, ds, "r", func(a *args, r string) string {
		return `SELECT o.event_id, p.digest, o.store, o.hlc, o.ids FROM cust_postings p JOIN ` + r + ` ON p.digest = r.digest
JOIN cust_observations o ON o.event_id = p.event_id WHERE o.forgotten = 0`
	}, func(rows *sql.Rows) error {
		var (
			n   observationNaming
			ids string
		)
		if err := rows.Scan(&n.event, &n.digest, &n.store, &n.hlc, &ids); err != nil {
			return err
		}
		n.pos = slices.IndexFunc(decodeObsIDs(ids), func(x identity.Identifier) bool { return x.Value == n.digest })
		if k := [2]string{n.event, n.digest}; !seen[k] {
			seen[k] = true
			out = append(out, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observations naming: unmerged: %w", err)
	}
	return out, nil
}

// writeGraphChanges writes what an Apply or Forget of the graph l loaded
// changed: identifiers' customers, joining observations and clusters;
// master ids; removed identifiers' rows; the loaded observations' labels.
func (s *Store) writeGraphChanges(ctx context.Context, tx dbq, ch identity.Changes, l *graphLoad) error {
	return s.writeGraphChangesWith(ctx, tx, ch, l, nil)
}

// writeGraphChangesWith is writeGraphChanges where fresh are identifiers
// that may be new to the hub, with their raw values: a moved identifier's
// row is upserted (inserted sealed when new), one statement for all.
func (s *Store) writeGraphChangesWith(ctx context.Context, tx dbq, ch identity.Changes, l *graphLoad, fresh map[string]custID) error {
	moves := newRowset(text("digest"), text("type"), blob("value_enc"), text("customer"), text("via"), text("cluster"))
	var removed []string
	for _, m := range ch.Moves {
		if m.Removed {
			removed = append(removed, m.Identifier.Value)
			continue
		}
		d := m.Identifier.Value
		enc := []byte{} // not NULL: the row exists, the value stays
		if c, ok := fresh[d]; ok {
			enc = s.sealedValue(c)
		}
		moves.add(d, string(m.Identifier.Type), enc, m.To, m.Via, m.Cluster)
	}
	// A row the batch did not name exists (its value is not re-sealed); a
	// named one may be new. Moves are in Compare order (type, then
	// digest); rows lock in that order on PostgreSQL, under the
	// customers' lock anyway.
	err := s.execRows(ctx, tx, moves, "r", func(a *args, r string) string {
		return `INSERT INTO cust_identifiers (digest, type, value_enc, customer, via, cluster) SELECT digest, type, value_enc, customer, via, cluster FROM ` + r + s.d.inOrder() + `
ON CONFLICT (` + s.d.identKey("digest") + `) DO UPDATE SET customer = excluded.customer, via = excluded.via, cluster = excluded.cluster`
	})
	if err != nil {
		return fmt.Errorf("identifier moves: %w", err)
	}
	if len(removed) > 0 {
		if err := s.deleteByDigest(ctx, tx, "cust_identifiers", "digest", removed); err != nil {
			return err
		}
	}
	add := newRowset(text("id"), text("anchor"), integer("founded_hlc"), text("founded_id"))
	var gone []string
	for _, m := range ch.Masters {
		if m.Removed {
			gone = append(gone, m.ID)
			continue
		}
		if m.New {
			add.add(m.ID, m.Anchor.Value, m.Founded.HLC.Pack(), m.Founded.ID)
		}
	}
	err = s.execRows(ctx, tx, add, "r", func(a *args, r string) string {
		return `INSERT INTO cust_masters (id, anchor, founded_hlc, founded_id) SELECT id, anchor, founded_hlc, founded_id FROM ` + r + s.d.inOrder() + ` ON CONFLICT (id) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("master ids: %w", err)
	}
	if len(gone) > 0 {
		if err := s.deleteByDigest(ctx, tx, "cust_masters", "id", gone); err != nil {
			return err
		}
	}
	return s.relabelObservations(ctx, tx, l, l.labelsAfter(ch))
}

// deleteByDigest deletes the rows of table whose col is one of keys.
func (s *Store) deleteByDigest(ctx context.Context, tx execer, table, col string, keys []string) error {
	rs := newRowset(text("k"))
	for _, k := range sortedUnique(keys) {
		rs.add(k)
	}
	err := s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `DELETE FROM ` + table + ` WHERE ` + s.d.keyed(table, col, col) + ` IN (SELECT ` + s.d.keyed(table, col, "k") + ` FROM ` + r + `)`
	})
	if err != nil {
		return fmt.Errorf("delete from %s: %w", table, err)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedUnique(v []string) []string {
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}

// knownStores are the stores the hub knows: every store a device has sent
// events or heartbeats from.
func (s *Store) knownStores(ctx context.Context, q dbq) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT store FROM device_progress UNION SELECT store FROM device_heartbeats`)
	if err != nil {
		return nil, fmt.Errorf("known stores: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.Sort(out)
	return slices.Compact(out), rows.Err()
}

// sealAD is the additional data a sealed value is bound to: its table and
// row.
func sealAD(table string, key ...string) string { return table + "\x00" + strings.Join(key, "\x00") }

func keysOf[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func sortedPairs(m map[[2]string]bool) [][2]string {
	out := make([][2]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sortedPairList(out)
}

func sortedPairList(v [][2]string) [][2]string {
	slices.SortFunc(v, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	return slices.Compact(v)
}

// canonical returns ids distinct in identity's Compare order, as the graph
// keeps an observation's identifiers.
func canonical(ids []identity.Identifier) []identity.Identifier {
	strict := true
	for i := 1; i < len(ids) && strict; i++ {
		strict = ids[i-1].Compare(ids[i]) < 0
	}
	if strict {
		// Most are already (an event's identifiers, one of each type, in
		// Compare order): ids itself, which callers only read.
		return ids
	}
	out := slices.Clone(ids)
	slices.SortFunc(out, identity.Identifier.Compare)
	return slices.Compact(out)
}

func cmpStr(a, b string) int { return strings.Compare(a, b) }

func slicesSort[T any](v []T, f func(a, b T) int) { slices.SortFunc(v, f) }

// anyRow reports whether table has a row: a cheap test before probing it
// with a whole batch's keys.
func (s *Store) anyRow(ctx context.Context, q dbq, table string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM `+table+` LIMIT 1`).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", table, err)
	}
	return true, nil
}
