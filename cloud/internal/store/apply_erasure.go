package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/erasure"
	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
)

// erasureApplier applies erase events (a shopper's request at a kiosk or
// till) as EraseCustomer does HQ's, by the rules of package erasure: the
// customer's identifiers, every observation naming them, their
// attributes, consent, purchase attributions and interests go;
// tombstones (digests) stay and scrub later events; every known store
// must answer. A store may erase only a customer who identified there;
// another request changes nothing. The erasure's id is the event's.
type erasureApplier struct{}

func (erasureApplier) name() string { return "erasure" }

func (erasureApplier) read(_ *Store, env *events.Envelope) (any, error) { return nil, nil }

func (erasureApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	for _, r := range t.custLive(events.KindErase) {
		if r.subject == "" {
			continue
		}
		c, err := t.s.customerOfDigest(ctx, t.tx, r.subject)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		ok, err := t.s.customerSeenAt(ctx, t.tx, c, r.store)
		if err != nil {
			return err
		}
		if !ok {
			t.s.log.Warn("store: erase request for a customer who never identified at the store ignored", "event_id", r.stamp.ID, "store", r.store, "device", r.device)
			continue
		}
		req := erasure.Request{ID: r.stamp.ID, Customer: c, Stamp: r.stamp, Operator: "store " + r.store + "/" + r.device}
		_, err = t.s.eraseTx(ctx, t.tx, req, r.erase.Reason, t.nowMS)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil {
			// The request's own message names the customer too.
			if err := t.s.queueStreamDeletions(ctx, t.tx, req.ID, nil, &StreamDeletion{Seq: uint64(r.streamSeq), EventID: r.stamp.ID}, t.nowMS); err != nil {
				return err
			}
		}
		t.cust.customers = append(t.cust.customers, c)
	}
	return nil
}

// EraseCustomer erases the customer id resolves to, at HQ's request
// (operator), and returns the erasure's id: the customer's personal data
// leaves the hub at once (identifiers, observations naming them,
// attributes, consent, purchase attributions, interests; sales stay,
// anonymous), and every store the hub knows must purge its caches and
// outbox and answer (PendingErasures, AckErasure). ErrNotFound when id names no customer.
func (s *Store) EraseCustomer(ctx context.Context, id, operator, reason string) (string, error) {
	if s.custKeys == nil {
		return "", ErrNoCustomerKeys
	}
	if operator == "" {
		return "", fmt.Errorf("%w: an erasure names its operator", ErrInvalid)
	}
	now := s.now()
	eid := ids.NewEventID(now)
	err := s.retry(ctx, "erase customer", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := s.lockCustomers(ctx, tx); err != nil {
			return err
		}
		c, ok, err := s.resolveMaster(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: customer %s", ErrNotFound, id)
		}
		req := erasure.Request{ID: eid, Customer: c, Stamp: s.hubStamp(eid), Operator: operator}
		if _, err := s.eraseTx(ctx, tx, req, reason, now.UnixMilli()); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return "", err
	}
	s.log.Info("store: customer erased", "erasure", eid, "operator", operator)
	return eid, nil
}

// eraseTx erases req's customer (a current master id) in tx, under the
// customers' lock.
func (s *Store) eraseTx(ctx context.Context, tx *sql.Tx, req erasure.Request, reason string, nowMS int64) (erasure.Plan, error) {
	if err := req.Validate(); err != nil {
		return erasure.Plan{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	members, err := s.customerIdentifiers(ctx, tx, []string{req.Customer})
	if err != nil {
		return erasure.Plan{}, err
	}
	if len(members) == 0 {
		return erasure.Plan{}, fmt.Errorf("%w: customer %s", ErrNotFound, req.Customer)
	}
	var digests []string
	for _, m := range members {
		digests = append(digests, m.digest)
	}
	// Survey comments first, while the purchases (their receipts) and the
	// master ids (a merged customer's former ids) still name them.
	if err := s.eraseSurveyComments(ctx, tx, req.Customer, digests); err != nil {
		return erasure.Plan{}, err
	}
	if err := s.eraseRefusedPayloads(ctx, tx, digests); err != nil {
		return erasure.Plan{}, err
	}
	// The observations naming them are forgotten; the graph must hold
	// whole the clusters of every identifier they name (an undone merge
	// names the other side's), or Forget would take what it does not see
	// for gone. Which stores saw each identifier comes with them, for the
	// stores still to scrub their outboxes.
	naming, err := s.observationsNaming(ctx, tx, digests)
	if err != nil {
		return erasure.Plan{}, fmt.Errorf("erasure: %w", err)
	}
	var obsIDs []string
	seenBy := map[string][]string{}
	for _, n := range naming {
		obsIDs = append(obsIDs, n.event)
		if n.store != "" {
			seenBy[n.digest] = append(seenBy[n.digest], n.store)
		}
	}
	obsIDs = sortedUnique(obsIDs)
	// Their raw messages in the events stream go too (stream_erase.go).
	if err := s.queueStreamDeletions(ctx, tx, req.ID, obsIDs, nil, nowMS); err != nil {
		return erasure.Plan{}, err
	}
	l, err := s.loadGraphRows(ctx, tx, digests, obsIDs, nil)
	if err != nil {
		return erasure.Plan{}, err
	}
	g := l.g
	c, ok := g.Customer(req.Customer)
	if !ok {
		return erasure.Plan{}, fmt.Errorf("%w: customer %s", ErrNotFound, req.Customer)
	}
	plan := erasure.Plan{Customer: c.ID}
	for _, m := range c.Identifiers {
		plan.Identifiers = append(plan.Identifiers, m.Identifier)
		d, err := identity.ParseDigest(m.Identifier.Value)
		if err != nil {
			return erasure.Plan{}, err
		}
		plan.Tombstones = append(plan.Tombstones, erasure.Tombstone{Digest: d, Erasure: req.ID, Erased: req.Stamp})
	}
	plan.Changes = g.Forget(plan.Identifiers...)
	// Each identifier's raw value, for the stores still to scrub their
	// outboxes.
	keep := newRowset(text("erasure"), text("digest"), text("type"), blob("value_enc"), text("seen_by"))
	for _, m := range members {
		raw, err := s.custKeys.Open(m.enc, sealAD("cust_identifiers", m.digest))
		if err != nil {
			return erasure.Plan{}, err
		}
		st := seenBy[m.digest]
		slices.Sort(st)
		st = slices.Compact(st)
		keep.add(req.ID, m.digest, m.typ, s.custKeys.Seal(raw, sealAD("cust_erasure_identifiers", req.ID, m.digest)), strings.Join(st, " "))
	}
	// The observations naming them are forgotten: their ids and evidence
	// stay, their identifiers and postings go; the master ids they
	// founded for other customers are kept findable.
	if err := s.keepOrphanMasters(ctx, tx, obsIDs, digests); err != nil {
		return erasure.Plan{}, fmt.Errorf("erasure: %w", err)
	}
	os := newRowset(text("k"))
	for _, id := range obsIDs {
		os.add(id)
	}
	err = s.execRows(ctx, tx, os, "r", func(a *args, r string) string {
		return `UPDATE cust_observations SET forgotten = 1, ids = '', cluster = '' WHERE event_id IN (SELECT k FROM ` + r + `)`
	})
	if err != nil {
		return erasure.Plan{}, fmt.Errorf("erasure: forget observations: %w", err)
	}
	if err := s.deleteByDigest(ctx, tx, "cust_postings", "event_id", obsIDs); err != nil {
		return erasure.Plan{}, err
	}
	// The forgotten observations keep no label; the others of their
	// clusters take the labels of what is left.
	for _, id := range obsIDs {
		delete(l.obs, id)
	}
	if err := s.writeGraphChanges(ctx, tx, plan.Changes, l); err != nil {
		return erasure.Plan{}, err
	}
	// Whatever Forget left of the identifiers (none should remain), and
	// everything attributed to them.
	for _, tc := range [][2]string{
		{"cust_identifiers", "digest"}, {"cust_profile", "subject"}, {"cust_consent", "subject"},
		{"cust_purchases", "subject"}, {"cust_interests", "subject"},
	} {
		if err := s.deleteByDigest(ctx, tx, tc[0], tc[1], digests); err != nil {
			return erasure.Plan{}, err
		}
	}
	if _, err := s.syncPurchaseFeed(ctx, tx, append(movedDigests(plan.Changes), digests...), true); err != nil {
		return erasure.Plan{}, err
	}
	for _, h := range s.custErase {
		if err := h(ctx, tx, digests); err != nil {
			return erasure.Plan{}, err
		}
	}
	tomb := newRowset(text("digest"), text("erasure"), integer("hlc"), text("event_id"))
	slices.SortFunc(plan.Tombstones, func(a, b erasure.Tombstone) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	for _, t := range plan.Tombstones {
		tomb.add(t.Digest.String(), t.Erasure, t.Erased.HLC.Pack(), t.Erased.ID)
	}
	err = s.execRows(ctx, tx, tomb, "r", func(a *args, r string) string {
		return `INSERT INTO cust_tombstones (digest, erasure, hlc, event_id) SELECT digest, erasure, hlc, event_id FROM ` + r + s.d.inOrder() + ` ON CONFLICT (digest) DO NOTHING`
	})
	if err != nil {
		return erasure.Plan{}, fmt.Errorf("erasure: tombstones: %w", err)
	}
	stores, err := s.knownStores(ctx, tx)
	if err != nil {
		return erasure.Plan{}, err
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return erasure.Plan{}, err
	}
	doneMS := int64(0)
	if len(stores) == 0 {
		doneMS = nowMS
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO cust_erasures (id, customer, operator, reason, hlc, requested_ms, salt, done_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		req.ID, req.Customer, req.Operator, reason, req.Stamp.HLC.Pack(), nowMS, hex.EncodeToString(salt[:]), doneMS)
	if err != nil {
		return erasure.Plan{}, fmt.Errorf("erasure: %w", err)
	}
	if len(stores) > 0 {
		err = s.execRows(ctx, tx, keep, "r", func(a *args, r string) string {
			return `INSERT INTO cust_erasure_identifiers (erasure, digest, type, value_enc, seen_by) SELECT erasure, digest, type, value_enc, seen_by FROM ` + r + s.d.inOrder()
		})
		if err != nil {
			return erasure.Plan{}, fmt.Errorf("erasure: identifiers to scrub: %w", err)
		}
		ss := newRowset(text("erasure"), text("store"), integer("since_ms"))
		for _, st := range stores {
			ss.add(req.ID, st, nowMS)
		}
		err = s.execRows(ctx, tx, ss, "r", func(a *args, r string) string {
			return `INSERT INTO cust_erasure_stores (erasure, store, since_ms) SELECT erasure, store, since_ms FROM ` + r + s.d.inOrder()
		})
		if err != nil {
			return erasure.Plan{}, fmt.Errorf("erasure: stores: %w", err)
		}
	}
	return plan, nil
}

// ErasedIdentifier is one identifier a store must scrub.
type ErasedIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ErasureOrder is what one store must do for one erasure: purge the
// customer from its caches and scrub the customer's identifiers from the
// events waiting in its outbox, then acknowledge (AckErasure).
//
// Identifiers are the raw (normalised) values, given only for the
// identifiers this store saw: a store learns nothing it did not know.
// Hashes cover every identifier of the customer, so a store that saw the
// person while offline can still find them: each is the lowercase hex of
// SHA-256(salt bytes || type || 0x00 || normalised value), salt being the
// hex-decoded Salt, normalised as the hub does (identity.Normalize; e-mail
// lower-cased with the provider rules, phone E.164, loyalty upper-cased
// without spaces).
type ErasureOrder struct {
	ID          string             `json:"id"`
	Customer    string             `json:"customer"`
	RequestedAt time.Time          `json:"requested_at"`
	Identifiers []ErasedIdentifier `json:"identifiers,omitempty"`
	Salt        string             `json:"salt"`
	Hashes      []string           `json:"hashes"`
}

// ErasureHash is the hash of one identifier in an ErasureOrder.
func ErasureHash(salt []byte, typ, value string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return hex.EncodeToString(h.Sum(nil))
}

// PendingErasures returns the erasures store has not acknowledged, oldest
// first, with what it needs to scrub. Personal data: send it only to that
// store, over its own authenticated channel.
func (s *Store) PendingErasures(ctx context.Context, store string) ([]ErasureOrder, error) {
	if s.custKeys == nil {
		return nil, ErrNoCustomerKeys
	}
	rows, err := s.r.QueryContext(ctx, `SELECT e.id, e.customer, e.requested_ms, e.salt FROM cust_erasure_stores x JOIN cust_erasures e ON e.id = x.erasure
WHERE x.store = $1 AND x.done_ms = 0 ORDER BY e.requested_ms, e.id`, store)
	if err != nil {
		return nil, fmt.Errorf("pending erasures: %w", err)
	}
	var out []ErasureOrder
	for rows.Next() {
		var (
			o  ErasureOrder
			ms int64
		)
		if err := rows.Scan(&o.ID, &o.Customer, &ms, &o.Salt); err != nil {
			rows.Close()
			return nil, err
		}
		o.RequestedAt = msTime(ms)
		out = append(out, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		o := &out[i]
		salt, err := hex.DecodeString(o.Salt)
		if err != nil {
			return nil, fmt.Errorf("erasure %s: salt: %w", o.ID, err)
		}
		rows, err := s.r.QueryContext(ctx, `SELECT digest, type, value_enc, seen_by FROM cust_erasure_identifiers WHERE erasure = $1 ORDER BY digest`, o.ID)
		if err != nil {
			return nil, fmt.Errorf("erasure %s: %w", o.ID, err)
		}
		for rows.Next() {
			var (
				d, typ, seen string
				enc          []byte
			)
			if err := rows.Scan(&d, &typ, &enc, &seen); err != nil {
				rows.Close()
				return nil, err
			}
			v, err := s.custKeys.OpenString(enc, sealAD("cust_erasure_identifiers", o.ID, d))
			if err != nil {
				rows.Close()
				return nil, err
			}
			o.Hashes = append(o.Hashes, ErasureHash(salt, typ, v))
			if slices.Contains(strings.Fields(seen), store) {
				o.Identifiers = append(o.Identifiers, ErasedIdentifier{Type: typ, Value: v})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		slices.Sort(o.Hashes)
	}
	return out, nil
}

// AckErasure records store's receipt for erasure erasureID, at at (the
// first receipt counts). Once every store has answered, the erasure is
// done and the raw identifiers it kept for them are deleted. ErrNotFound
// for an unknown erasure; a store the erasure did not wait for (one the
// hub learnt of later) changes nothing.
func (s *Store) AckErasure(ctx context.Context, store, erasureID string, at time.Time) error {
	return s.retry(ctx, "ack erasure", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cust_erasures WHERE id = $1`, erasureID).Scan(&n); err != nil {
			return fmt.Errorf("ack erasure: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: erasure %s", ErrNotFound, erasureID)
		}
		atMS := max(at.UnixMilli(), 1)
		if _, err := tx.ExecContext(ctx, `UPDATE cust_erasure_stores SET done_ms = $1 WHERE erasure = $2 AND store = $3 AND done_ms = 0`, atMS, erasureID, store); err != nil {
			return fmt.Errorf("ack erasure: %w", err)
		}
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cust_erasure_stores WHERE erasure = $1 AND done_ms = 0`, erasureID).Scan(&pending); err != nil {
			return fmt.Errorf("ack erasure: %w", err)
		}
		if pending == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE cust_erasures SET done_ms = $1 WHERE id = $2 AND done_ms = 0`, atMS, erasureID); err != nil {
				return fmt.Errorf("ack erasure: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM cust_erasure_identifiers WHERE erasure = $1`, erasureID); err != nil {
				return fmt.Errorf("ack erasure: %w", err)
			}
		}
		return tx.Commit()
	})
}

// Erasure is one erasure's state.
type Erasure struct {
	ID          string               `json:"id"`
	Customer    string               `json:"customer"`
	Operator    string               `json:"operator"`
	Reason      string               `json:"reason,omitempty"`
	RequestedAt time.Time            `json:"requested_at"`
	Done        bool                 `json:"done"`
	DoneAt      time.Time            `json:"done_at,omitzero"`
	Stores      []erasure.StoreState `json:"stores"`
	// Stream is how far the erasure reached the events stream's copies
	// of the customer's messages (stream_erase.go).
	Stream ErasureStream `json:"stream"`
}

// ErasureStatus returns erasure id with each store's state (erasure.Progress).
func (s *Store) ErasureStatus(ctx context.Context, id string) (Erasure, error) {
	var (
		e             Erasure
		reqMS, doneMS int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, customer, operator, reason, requested_ms, done_ms FROM cust_erasures WHERE id = $1`, id).
		Scan(&e.ID, &e.Customer, &e.Operator, &e.Reason, &reqMS, &doneMS)
	if errors.Is(err, sql.ErrNoRows) {
		return Erasure{}, fmt.Errorf("%w: erasure %s", ErrNotFound, id)
	}
	if err != nil {
		return Erasure{}, fmt.Errorf("erasure: %w", err)
	}
	e.RequestedAt, e.DoneAt = msTime(reqMS), msTime(doneMS)
	rows, err := s.r.QueryContext(ctx, `SELECT store, since_ms, done_ms FROM cust_erasure_stores WHERE erasure = $1 ORDER BY store`, id)
	if err != nil {
		return Erasure{}, fmt.Errorf("erasure: %w", err)
	}
	defer rows.Close()
	var (
		stores   []string
		receipts []erasure.Receipt
	)
	for rows.Next() {
		var (
			st            string
			since, doneAt int64
		)
		if err := rows.Scan(&st, &since, &doneAt); err != nil {
			return Erasure{}, err
		}
		stores = append(stores, st)
		if doneAt != 0 {
			receipts = append(receipts, erasure.Receipt{Store: st, Erasure: id, At: msTime(doneAt)})
		}
	}
	if err := rows.Err(); err != nil {
		return Erasure{}, err
	}
	e.Stores, e.Done = erasure.Progress(id, e.RequestedAt, stores, receipts)
	if e.Stores == nil {
		e.Stores = []erasure.StoreState{}
	}
	if e.Stream, err = s.erasureStream(ctx, id); err != nil {
		return Erasure{}, err
	}
	return e, nil
}
