package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/omnisync/omnisync/cloud/internal/erasure"
	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
)

// identityApplier keeps the identity graph by the rules of package
// identity: every event naming a customer (identify, update, consent, a
// sale or return with a customer) is an observation of the identifiers
// it names, with its evidence; the batch's clusters are loaded whole,
// the observations applied, and the identifiers' customers, clusters and
// master ids written.
//
// It is also the customers' gate: under the customers' lock, every event
// naming an erased identifier (a tombstone; erasure.Register) is scrubbed
// for every customer applier: an identify, update, consent or erase has no
// effect at all (erasure.Drop), a sale or return moves stock without its
// customer (erasure.Anonymise). Scrubbed events are not dead-lettered:
// their bodies would keep the person.
type identityApplier struct{}

func (identityApplier) name() string { return "identity" }

func (identityApplier) read(s *Store, env *events.Envelope) (any, error) {
	r, err := s.readCustomer(env)
	if r == nil || err != nil {
		return nil, err
	}
	return r, nil
}

func (identityApplier) gate(ctx context.Context, t *applyTx) error {
	reads := t.custReads()
	if len(reads) == 0 {
		return nil
	}
	if err := t.s.lockCustomers(ctx, t.tx); err != nil {
		return err
	}
	set := make(map[string]bool, 2*len(reads))
	for _, r := range reads {
		for _, c := range r.v.(*custRead).ids {
			set[c.digest] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	// Erasures are rare: most batches find no tombstone at all and skip
	// the probe (tombstones are written only under the lock held here).
	if some, err := t.s.anyRow(ctx, t.tx, "cust_tombstones"); err != nil || !some {
		return err
	}
	rs := newRowset(text("digest"))
	for _, d := range sortedKeys(set) {
		rs.add(d)
	}
	erased := map[string]bool{}
	err := t.s.queryRows(ctx, t.tx, rs, "r", func(a *args, r string) string {
		if t.s.d.pg() {
			return `SELECT t.digest FROM ` + r + ` CROSS JOIN LATERAL (SELECT digest FROM cust_tombstones WHERE digest = r.digest) t`
		}
		return `SELECT t.digest FROM cust_tombstones t JOIN ` + r + ` ON t.digest = r.digest`
	}, func(rows *sql.Rows) error {
		var d string
		if err := rows.Scan(&d); err != nil {
			return err
		}
		erased[d] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("tombstones: %w", err)
	}
	if len(erased) == 0 {
		return nil
	}
	t.cust.scrubbed = map[int]bool{}
	for _, r := range reads {
		cr := r.v.(*custRead)
		for _, d := range cr.digests() {
			if erased[d] {
				t.cust.scrubbed[r.item] = true
				t.s.log.Info("store: event naming an erased customer scrubbed", "event_id", cr.stamp.ID, "store", cr.store, "device", cr.device, "kind", cr.kind, "action", erasure.ActionFor(cr.kind).String())
				break
			}
		}
	}
	return nil
}

func (identityApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	if err := t.setStreamSeqs(ctx); err != nil {
		return err
	}
	chg, err := t.s.applyObservations(ctx, t.tx, t.conn, t.custLive(), t.nowMS)
	if err != nil {
		return err
	}
	t.cust.customers = append(t.cust.customers, chg.Customers...)
	return nil
}

// applyObservations records the observations of live (with the sealed
// raw values of identifiers new to the hub) and writes what the graph
// makes of them, an identifier's row once: its customer, joining
// observation and cluster with its value. It runs under the customers'
// lock.
//
// With conn (the transaction's connection, on PostgreSQL) the new rows
// are copied (copyObservations); without it, or when a copied row was
// there already, they are upserted one statement per table.
func (s *Store) applyObservations(ctx context.Context, tx dbq, conn *sql.Conn, live []*custRead, nowMS int64) (identity.Changes, error) {
	return s.applyObservationsFiltered(ctx, tx, conn, live, nowMS, conn != nil && s.d.pg())
}

// applyObservationsFiltered is applyObservations, with filtered set when
// the digest filter may spare the lookups of digests new to the hub
// (digestsAbsent): only on the copy path, where a digest it wrongly
// called absent fails its row's COPY, and the batch is applied again
// without it.
func (s *Store) applyObservationsFiltered(ctx context.Context, tx dbq, conn *sql.Conn, live []*custRead, nowMS int64, filtered bool) (identity.Changes, error) {
	// Sized for the batch: a batch of new shoppers fills them all, and a
	// map grown by doubling rehashes its keys at every step.
	var (
		batch   = identity.Batch{Observations: make([]identity.Observation, 0, len(live))}
		digests = make([]string, 0, 2*len(live))
		ids     = make(map[string]custID, 2*len(live))
		seqs    map[string]int64
	)
	for _, r := range live {
		if r.kind == events.KindErase || len(r.obs.Identifiers) == 0 {
			// An erase names whom to erase: no evidence, nothing to keep.
			continue
		}
		for _, c := range r.ids {
			ids[c.digest] = c
		}
		if r.streamSeq > 0 {
			if seqs == nil {
				seqs = make(map[string]int64, len(live))
			}
			if _, ok := seqs[r.stamp.ID]; !ok {
				seqs[r.stamp.ID] = r.streamSeq
			}
		}
		batch.Observations = append(batch.Observations, r.obs)
		digests = append(digests, r.digests()...)
	}
	if len(batch.Observations) == 0 {
		return identity.Changes{}, nil
	}
	step := s.stepTimer()
	var absent map[string]bool
	if filtered {
		a, err := s.digestsAbsent(ctx, tx, digests)
		if err != nil {
			return identity.Changes{}, err
		}
		absent = a
	}
	l, err := s.loadGraphRows(ctx, tx, digests, nil, absent)
	if err != nil {
		return identity.Changes{}, err
	}
	step("identity.load")
	ch, err := l.g.Apply(batch)
	if err != nil {
		return identity.Changes{}, err
	}
	labels := l.labelsAfter(ch)
	step("identity.graph")
	obs := make([]identity.Observation, 0, len(batch.Observations))
	once := make(map[string]bool, len(batch.Observations))
	for _, o := range batch.Observations {
		if !once[o.ID()] {
			once[o.ID()] = true
			obs = append(obs, o)
		}
	}
	copied := false
	if conn != nil && s.d.pg() {
		copied, err = s.copyObservations(ctx, tx, conn, obs, seqs, labels, ch, ids, l)
		if err != nil {
			return identity.Changes{}, err
		}
		if copied {
			if err := s.relabelObservations(ctx, tx, l, labels); err != nil {
				return identity.Changes{}, err
			}
		}
	}
	if !copied && absent != nil {
		// A row was there already: one event delivered under two origins,
		// or a digest the filter called absent by mistake. Again, looking
		// every digest up.
		return s.applyObservationsFiltered(ctx, tx, conn, live, nowMS, false)
	}
	if !copied {
		if err := s.upsertObservations(ctx, tx, obs, seqs, labels); err != nil {
			return identity.Changes{}, err
		}
		// Every identifier the batch named that the graph moved is new or
		// changed customer; those the batch did not name exist already
		// (the graph loaded them), so their value is not needed.
		if err := s.writeGraphChangesWith(ctx, tx, ch, l, ids); err != nil {
			return identity.Changes{}, err
		}
	}
	if s.d.pg() {
		// Every replica's digest filter learns the rows added.
		var added []string
		for _, m := range ch.Moves {
			if !m.Removed && !l.held(m.Identifier.Value) {
				added = append(added, m.Identifier.Value)
			}
		}
		if err := s.logDigests(ctx, tx, added, nowMS); err != nil {
			return identity.Changes{}, err
		}
	}
	// Only an identifier the hub held before the batch can have
	// purchases: a purchase is recorded after its subject's observation
	// (the purchases applier runs after this one), which gives the
	// identifier its row. A batch of new shoppers has nothing to sync.
	moved := movedDigests(ch)
	moved = slices.DeleteFunc(moved, func(d string) bool { return !l.held(d) })
	if _, err := s.syncPurchaseFeed(ctx, tx, moved, false); err != nil {
		return identity.Changes{}, err
	}
	return ch, nil
}

// upsertObservations inserts obs, each under the cluster label of its
// identifiers (labels, once the batch is applied), those already there
// (one event delivered under two origins) left as they are: the graph
// loaded them, and relabelObservations sees to their labels. seqs are
// the events stream's messages of those that came in one, by event id.
func (s *Store) upsertObservations(ctx context.Context, tx dbq, obs []identity.Observation, seqs map[string]int64, labels map[string]string) error {
	rows := newRowset(text("event_id"), integer("hlc"), text("ids"), text("store"), text("device"), text("rule"), text("operator"), integer("stream_seq"), text("cluster"))
	for _, o := range obs {
		rows.add(o.ID(), o.Stamp.HLC.Pack(), encodeObsIDs(canonical(o.Identifiers)), o.Evidence.Store, o.Evidence.Device, o.Evidence.Rule, o.Evidence.Operator, seqs[o.ID()], obsLabel(o.Identifiers, labels))
	}
	err := s.execRows(ctx, tx, rows, "r", func(a *args, r string) string {
		return `INSERT INTO cust_observations (event_id, hlc, ids, store, device, rule, operator, stream_seq, cluster) SELECT event_id, hlc, ids, store, device, rule, operator, stream_seq, cluster FROM ` + r + s.d.inOrder() + ` ON CONFLICT (event_id) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("observations: %w", err)
	}
	return nil
}

// postObservation posts observation id under each of its identifiers:
// what finds an unmerged observation, whose identifiers may no longer
// share a cluster, from any of them.
func (s *Store) postObservation(ctx context.Context, tx dbq, id string, ids []identity.Identifier) error {
	post := newRowset(text("digest"), text("event_id"))
	for _, x := range sortedUnique(digestsOf(ids)) {
		post.add(x, id)
	}
	err := s.execRows(ctx, tx, post, "r", func(a *args, r string) string {
		return `INSERT INTO cust_postings (digest, event_id) SELECT digest, event_id FROM ` + r + s.d.inOrder() + ` ON CONFLICT (digest, event_id) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("postings: %w", err)
	}
	return nil
}

func digestsOf(ids []identity.Identifier) []string {
	out := make([]string, len(ids))
	for i, x := range ids {
		out[i] = x.Value
	}
	return out
}

// copyObservations writes obs (each under its cluster's label, labels)
// and what the graph changed (ch) by COPY where rows are new:
// observations (an event is almost always new to the hub: dedup by
// origin saw to it), identifiers the hub holds no row of (l.held: as the
// graph's load found them under the customers' lock) and new master ids;
// the rows that exist are updated in one statement. It runs in a savepoint: when
// a copied row was there already (one event delivered under two origins,
// a master id founded again), the savepoint is rolled back and it returns
// false, for the caller to upsert instead.
func (s *Store) copyObservations(ctx context.Context, tx dbq, conn *sql.Conn, obs []identity.Observation, seqs map[string]int64, labels map[string]string, ch identity.Changes, fresh map[string]custID, l *graphLoad) (bool, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT cust_copy"); err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	err := s.copyGraph(ctx, tx, conn, obs, seqs, labels, ch, fresh, l)
	if errors.Is(err, errCopyDuplicate) {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT cust_copy"); err != nil {
			return false, fmt.Errorf("rollback to savepoint: %w", err)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT cust_copy"); err != nil {
		return false, fmt.Errorf("release savepoint: %w", err)
	}
	return true, nil
}

func (s *Store) copyGraph(ctx context.Context, tx dbq, conn *sql.Conn, obs []identity.Observation, seqs map[string]int64, labels map[string]string, ch identity.Changes, fresh map[string]custID, l *graphLoad) error {
	c := newCopyBuf(make([]byte, 0, 360*len(obs)))
	for _, o := range obs {
		c.text(o.ID()).int(o.Stamp.HLC.Pack()).text(encodeObsIDs(canonical(o.Identifiers))).
			text(o.Evidence.Store).text(o.Evidence.Device).text(o.Evidence.Rule).text(o.Evidence.Operator).int(seqs[o.ID()]).
			text(obsLabel(o.Identifiers, labels)).end()
	}
	if err := copyRows(ctx, conn, "cust_observations (event_id, hlc, ids, store, device, rule, operator, stream_seq, cluster)", c); err != nil {
		return err
	}
	step := s.stepTimer()
	step("identity.observations")
	c = newCopyBuf(slices.Grow(c.b[:0], 400*len(ch.Moves)))
	update := newRowset(text("digest"), text("customer"), text("via"), text("cluster"))
	var removed []string
	for _, m := range ch.Moves {
		d := m.Identifier.Value
		switch {
		case m.Removed:
			removed = append(removed, d)
		case l.held(d):
			update.add(d, m.To, m.Via, m.Cluster)
		default:
			// Not held: new to the hub, and named by the batch (the graph
			// loads every identifier of the hub it holds). One that is
			// not named is left to the upsert.
			f, ok := fresh[d]
			if !ok {
				return errCopyDuplicate
			}
			enc := s.sealedValue(f)
			c.text(d).text(string(m.Identifier.Type)).bytes(enc).text(m.To).text(m.Via).text(m.Cluster).end()
		}
	}
	if err := copyRows(ctx, conn, "cust_identifiers (digest, type, value_enc, customer, via, cluster)", c); err != nil {
		return err
	}
	err := s.execRows(ctx, tx, update, "r", func(a *args, r string) string {
		return `UPDATE cust_identifiers SET customer = r.customer, via = r.via, cluster = r.cluster FROM ` + r + ` WHERE ` + s.d.identKey("cust_identifiers.digest") + ` = ` + s.d.identKey("r.digest")
	})
	if err != nil {
		return fmt.Errorf("identifier moves: %w", err)
	}
	if len(removed) > 0 {
		if err := s.deleteByDigest(ctx, tx, "cust_identifiers", "digest", removed); err != nil {
			return err
		}
	}
	step("identity.identifiers")
	c = newCopyBuf(c.b)
	var gone []string
	for _, m := range ch.Masters {
		switch {
		case m.Removed:
			gone = append(gone, m.ID)
		case m.New:
			c.text(m.ID).text(m.Anchor.Value).int(m.Founded.HLC.Pack()).text(m.Founded.ID).end()
		}
	}
	if err := copyRows(ctx, conn, "cust_masters (id, anchor, founded_hlc, founded_id)", c); err != nil {
		return err
	}
	if len(gone) > 0 {
		if err := s.deleteByDigest(ctx, tx, "cust_masters", "id", gone); err != nil {
			return err
		}
	}
	step("identity.masters")
	return nil
}
