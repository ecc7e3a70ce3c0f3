package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/cloud/internal/profiles"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
)

// CustomerHook adds another aggregate's part to a customer view (its open
// carts, its CX metrics), from the view's Subjects: data attributed to
// those digests is the customer's, exactly, before and after any merge or
// unmerge.
type CustomerHook func(ctx context.Context, v *CustomerView) error

// CustomerEraser deletes another aggregate's data attributed to subjects
// (digests) when their customer is erased, in the erasure's transaction.
type CustomerEraser func(ctx context.Context, tx *sql.Tx, subjects []string) error

// AddCustomerHook registers h; hooks run in order on every CustomerView.
func (s *Store) AddCustomerHook(h CustomerHook) { s.custHooks = append(s.custHooks, h) }

// AddCustomerEraser registers e; erasers run in every erasure.
func (s *Store) AddCustomerEraser(e CustomerEraser) { s.custErase = append(s.custErase, e) }

// CustomerIdentifier is one identifier of a customer, with the evidence of
// the observation that joined it and every observation naming it.
type CustomerIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	// Via is the observation (event id) that joined it to the customer.
	Via      string            `json:"via"`
	At       time.Time         `json:"at"`
	Evidence identity.Evidence `json:"evidence"`
	Links    []CustomerLink    `json:"links"`
	// Stores are where it was seen.
	Stores []string `json:"stores"`
}

// CustomerLink is one observation naming an identifier.
type CustomerLink struct {
	Observation string            `json:"observation"`
	At          time.Time         `json:"at"`
	Evidence    identity.Evidence `json:"evidence"`
	// With are the types of the other identifiers it named (values are
	// on the customers they belong to).
	With []string `json:"with"`
	Live bool     `json:"live"`
	// UndoneBy is the operator of the unmerge that undid it.
	UndoneBy string `json:"undone_by,omitempty"`
}

// CustomerMerge is an observation that joined customers: what an unmerge
// undoes.
type CustomerMerge struct {
	Observation string            `json:"observation"`
	At          time.Time         `json:"at"`
	Evidence    identity.Evidence `json:"evidence"`
	Joined      []string          `json:"joined"`
}

// Purchase is a sale or return attributed to a customer.
type Purchase struct {
	EventID  string         `json:"event_id"`
	Kind     string         `json:"kind"`
	Store    string         `json:"store"`
	Location string         `json:"location"`
	Channel  string         `json:"channel,omitempty"`
	OrderID  string         `json:"order_id,omitempty"`
	At       time.Time      `json:"at"`
	Amount   int64          `json:"amount"`
	Items    int64          `json:"items"`
	Lines    []PurchaseLine `json:"lines"`
}

// ConsentFlag is one purpose's answer now, on every channel.
type ConsentFlag struct {
	Purpose string `json:"purpose"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// CustomerView is the customer 360.
type CustomerView struct {
	ID string `json:"id"`
	// Requested is the id asked for, when it redirected here.
	Requested   string               `json:"requested,omitempty"`
	Identifiers []CustomerIdentifier `json:"identifiers"`
	Merges      []CustomerMerge      `json:"merges"`
	Profile     map[string]string    `json:"profile"`
	Consent     []consent.Decision   `json:"consent"`
	Flags       []ConsentFlag        `json:"consent_now"`
	Purchases   []Purchase           `json:"purchases"`
	// Interests are the items the web shop saw her look at or ask about
	// within InterestWindow (AddInterest), newest first.
	Interests []Interest `json:"interests"`
	// Carts and Metrics are filled by hooks (AddCustomerHook).
	Carts   []json.RawMessage          `json:"carts"`
	Metrics map[string]json.RawMessage `json:"metrics,omitempty"`
	// Stores are the stores the customer identified at.
	Stores []string `json:"stores"`
	// Subjects are the customer's identifiers' digests: what data is
	// attributed to. Not personal data, but no use to callers either.
	Subjects []string `json:"-"`
}

// custMember is a customer's identifier row.
type custMember struct {
	digest, typ, customer string
	enc                   []byte
}

// customerIdentifiers returns the identifier rows of customers (current
// master ids). A customer's own id is anchored on one of its identifiers,
// and a customer lies within one cluster: its rows are those of its
// anchor's cluster that name it. (An index by customer would cost every
// new shopper a random index entry; this costs a read of the cluster.)
func (s *Store) customerIdentifiers(ctx context.Context, q dbq, customers []string) ([]custMember, error) {
	rs := newRowset(text("customer"))
	for _, c := range sortedUnique(customers) {
		rs.add(c)
	}
	var out []custMember
	err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		if s.d.pg() {
			return `SELECT i.digest, i.type, i.customer, i.value_enc FROM ` + r + `
CROSS JOIN LATERAL (SELECT anchor FROM cust_masters WHERE id = r.customer OFFSET 0) m
CROSS JOIN LATERAL (SELECT cluster FROM cust_identifiers WHERE digest_key(digest) = digest_key(m.anchor) AND cluster <> '' OFFSET 0) k
CROSS JOIN LATERAL (SELECT digest, type, customer, value_enc FROM cust_identifiers WHERE cluster = k.cluster AND customer = r.customer OFFSET 0) i`
		}
		return `SELECT i.digest, i.type, i.customer, i.value_enc FROM ` + r + ` JOIN cust_masters m ON m.id = r.customer
JOIN cust_identifiers k ON k.digest = m.anchor AND k.cluster <> ''
JOIN cust_identifiers i ON i.cluster = k.cluster AND i.customer = r.customer`
	}, func(rows *sql.Rows) error {
		var m custMember
		if err := rows.Scan(&m.digest, &m.typ, &m.customer, &m.enc); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("customer identifiers: %w", err)
	}
	slices.SortFunc(out, func(a, b custMember) int { return strings.Compare(a.digest, b.digest) })
	return out, nil
}

// resolveMaster returns the customer master id m resolves to now.
func (s *Store) resolveMaster(ctx context.Context, q dbq, m string) (string, bool, error) {
	var c string
	err := q.QueryRowContext(ctx, `SELECT i.customer FROM cust_masters m JOIN cust_identifiers i ON `+s.d.identKey("i.digest")+` = `+s.d.identKey("m.anchor")+` WHERE m.id = $1`, m).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) || err == nil && c == "" {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("resolve customer: %w", err)
	}
	return c, true, nil
}

// customerOfDigest returns the customer identifier digest d belongs to.
func (s *Store) customerOfDigest(ctx context.Context, q dbq, d string) (string, error) {
	var c string
	err := q.QueryRowContext(ctx, `SELECT customer FROM cust_identifiers WHERE `+s.d.identKey("digest")+` = `+s.d.identKey("$1"), d).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) || err == nil && c == "" {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("customer of identifier: %w", err)
	}
	return c, nil
}

// customerSeenAt reports whether any identifier of customer c was seen at
// store.
func (s *Store) customerSeenAt(ctx context.Context, q dbq, c, store string) (bool, error) {
	members, err := s.customerIdentifiers(ctx, q, []string{c})
	if err != nil || len(members) == 0 {
		return false, err
	}
	digests := make([]string, len(members))
	for i, m := range members {
		digests[i] = m.digest
	}
	seen, err := s.observationsNaming(ctx, q, digests)
	if err != nil {
		return false, fmt.Errorf("customer seen: %w", err)
	}
	return slices.ContainsFunc(seen, func(n observationNaming) bool { return n.store == store }), nil
}

// FindCustomer returns the master id of the customer an identifier
// ("email:a@b.example", normalised as events' identifiers are) belongs to.
// ErrNotFound when none; ErrInvalid for a malformed identifier.
func (s *Store) FindCustomer(ctx context.Context, identifier, region string) (string, error) {
	if s.custKeys == nil {
		return "", ErrNoCustomerKeys
	}
	id, err := identity.Parse(identifier, strings.ToUpper(region))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, errors.Unwrap(err))
	}
	return s.customerOfDigest(ctx, s.r, s.custKeys.Digest(id))
}

// Customer returns the 360 view of the customer id resolves to (a master
// id, old ones redirecting). stores, when not nil, limits it to a customer
// who identified at one of them (a store manager's): ErrNotFound
// otherwise, as for an unknown id.
func (s *Store) Customer(ctx context.Context, id string, stores []string) (CustomerView, error) {
	if s.custKeys == nil {
		return CustomerView{}, ErrNoCustomerKeys
	}
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return CustomerView{}, err
	}
	defer tx.Rollback()
	c, ok, err := s.resolveMaster(ctx, tx, id)
	if err != nil {
		return CustomerView{}, err
	}
	if !ok {
		return CustomerView{}, fmt.Errorf("%w: customer %s", ErrNotFound, id)
	}
	v := CustomerView{ID: c, Profile: map[string]string{}, Carts: []json.RawMessage{}, Merges: []CustomerMerge{}, Purchases: []Purchase{}, Consent: []consent.Decision{},
		Interests: []Interest{}}
	if c != id {
		v.Requested = id
	}
	members, err := s.customerIdentifiers(ctx, tx, []string{c})
	if err != nil {
		return CustomerView{}, err
	}
	for _, m := range members {
		v.Subjects = append(v.Subjects, m.digest)
	}
	seen, err := s.seenStores(ctx, tx, v.Subjects)
	if err != nil {
		return CustomerView{}, err
	}
	for _, st := range seen {
		v.Stores = append(v.Stores, st...)
	}
	v.Stores = sortedUnique(v.Stores)
	if stores != nil && !slices.ContainsFunc(v.Stores, func(st string) bool { return slices.Contains(stores, st) }) {
		return CustomerView{}, fmt.Errorf("%w: customer %s", ErrNotFound, id)
	}
	g, err := s.loadGraph(ctx, tx, v.Subjects, nil)
	if err != nil {
		return CustomerView{}, err
	}
	gc, ok := g.Customer(c)
	if !ok {
		return CustomerView{}, fmt.Errorf("%w: customer %s", ErrNotFound, id)
	}
	byDigest := map[string]custMember{}
	for _, m := range members {
		byDigest[m.digest] = m
	}
	for _, m := range gc.Identifiers {
		row, ok := byDigest[m.Identifier.Value]
		if !ok {
			continue
		}
		raw, err := s.custKeys.OpenString(row.enc, sealAD("cust_identifiers", row.digest))
		if err != nil {
			return CustomerView{}, err
		}
		ci := CustomerIdentifier{Type: row.typ, Value: raw, Via: m.Via, At: m.At.HLC.Time().UTC(), Evidence: m.Evidence, Stores: seen[row.digest], Links: []CustomerLink{}}
		for _, l := range g.Links(m.Identifier) {
			cl := CustomerLink{Observation: l.Observation, At: l.At.HLC.Time().UTC(), Evidence: l.Evidence, Live: l.Live, With: []string{}}
			for _, w := range l.With {
				cl.With = append(cl.With, string(w.Type))
			}
			if l.Unlink != nil {
				cl.UndoneBy = l.Unlink.Operator
			}
			ci.Links = append(ci.Links, cl)
		}
		v.Identifiers = append(v.Identifiers, ci)
	}
	for _, m := range gc.Merges {
		v.Merges = append(v.Merges, CustomerMerge{Observation: m.Observation, At: m.At.HLC.Time().UTC(), Evidence: m.Evidence, Joined: m.Joined})
	}
	profs, err := s.loadProfiles(ctx, tx, v.Subjects)
	if err != nil {
		return CustomerView{}, err
	}
	var ps []profiles.Profile
	for _, p := range profs {
		ps = append(ps, p)
	}
	v.Profile = profiles.Join(ps...).Visible()
	states, err := s.loadConsent(ctx, tx, v.Subjects)
	if err != nil {
		return CustomerView{}, err
	}
	var ss []consent.State
	for _, st := range states {
		ss = append(ss, *st)
	}
	cs := consent.Join(ss...)
	v.Consent = append(v.Consent, cs.Decisions()...)
	now := s.now()
	for _, p := range consent.Purposes() {
		a := cs.May(p, consent.AllChannels, now)
		v.Flags = append(v.Flags, ConsentFlag{Purpose: string(p), Allowed: a.Allowed, Reason: string(a.Reason)})
	}
	v.Purchases, err = s.purchasesOf(ctx, tx, v.Subjects, 0)
	if err != nil {
		return CustomerView{}, err
	}
	v.Interests, err = s.interestsOf(ctx, tx, v.Subjects, now.Add(-InterestWindow))
	if err != nil {
		return CustomerView{}, err
	}
	if err := tx.Commit(); err != nil {
		return CustomerView{}, err
	}
	for _, h := range s.custHooks {
		if err := h(ctx, &v); err != nil {
			return CustomerView{}, err
		}
	}
	return v, nil
}

// seenStores returns, per digest, the stores it was seen at: the stores
// of the observations naming it.
func (s *Store) seenStores(ctx context.Context, q dbq, digests []string) (map[string][]string, error) {
	seen, err := s.observationsNaming(ctx, q, digests)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, n := range seen {
		if n.store != "" {
			out[n.digest] = append(out[n.digest], n.store)
		}
	}
	for d, v := range out {
		slices.Sort(v)
		out[d] = slices.Compact(v)
	}
	return out, nil
}

// purchasesOf returns the purchases attributed to subjects, newest first
// (at most limit; 0: all).
func (s *Store) purchasesOf(ctx context.Context, q dbq, subjects []string, limit int) ([]Purchase, error) {
	out := []Purchase{}
	rs := newRowset(text("subject"))
	for _, d := range sortedUnique(subjects) {
		rs.add(d)
	}
	err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		return `SELECT p.event_id, p.kind, p.store, p.location, p.channel, p.order_id, p.hlc, p.amount, p.items, p.lines FROM ` +
			s.probe(r, "cust_purchases", "p", "subject", "r.subject")
	}, func(rows *sql.Rows) error {
		var (
			p     Purchase
			h     int64
			lines string
		)
		if err := rows.Scan(&p.EventID, &p.Kind, &p.Store, &p.Location, &p.Channel, &p.OrderID, &h, &p.Amount, &p.Items, &lines); err != nil {
			return err
		}
		p.At = stampOf(h, p.EventID).HLC.Time().UTC()
		if err := json.Unmarshal([]byte(lines), &p.Lines); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("purchases: %w", err)
	}
	slices.SortFunc(out, func(a, b Purchase) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(b.EventID, a.EventID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// CustomerCard is what a till or kiosk gets when a shopper identifies:
// enough to greet and serve them, no more.
type CustomerCard struct {
	Customer  string        `json:"customer"`
	FirstName string        `json:"first_name,omitempty"`
	Tier      string        `json:"tier,omitempty"`
	Consent   []ConsentFlag `json:"consent"`
	// Purchases are the most recent ones (at most CardPurchases), at any
	// store or online.
	Purchases []Purchase `json:"purchases"`
}

// CardPurchases bounds the purchases on a customer card.
const CardPurchases = 5

// CustomerCard returns the card of the customer identifiers (raw, as the
// till saw them: {"loyalty": "LC-1"}) name, for store: only if that
// customer identified at store, else ErrNotFound (as for an unknown
// customer, so a store cannot probe for others' customers).
func (s *Store) CustomerCard(ctx context.Context, store string, identifiers map[string]string) (CustomerCard, error) {
	ids, err := s.resolveIdentifiers(events.CustomerRef(identifiers), "")
	if err != nil {
		if errors.Is(err, ErrNoCustomerKeys) {
			return CustomerCard{}, err
		}
		return CustomerCard{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var c string
	for _, id := range ids {
		if c, err = s.customerOfDigest(ctx, s.r, id.digest); err == nil {
			break
		}
		if !errors.Is(err, ErrNotFound) {
			return CustomerCard{}, err
		}
	}
	if c == "" {
		return CustomerCard{}, ErrNotFound
	}
	v, err := s.Customer(ctx, c, []string{store})
	if err != nil {
		return CustomerCard{}, err
	}
	card := CustomerCard{Customer: v.ID, FirstName: v.Profile["first_name"], Tier: v.Profile["tier"], Consent: v.Flags, Purchases: v.Purchases}
	if len(card.Purchases) > CardPurchases {
		card.Purchases = card.Purchases[:CardPurchases]
	}
	return card, nil
}

// Unmerge undoes a merge of the customer id resolves to: the merge made
// by observation (an event id from the view's Merges; "" for the newest
// merge). The customers come back exactly as they were without it, with
// their ids, identifiers, attributes, consent and purchases. It returns
// the customers whose views changed. ErrNotFound for an unknown customer
// or a merge that is not the customer's.
func (s *Store) Unmerge(ctx context.Context, id, observation, operator, reason string) ([]string, error) {
	if operator == "" {
		return nil, fmt.Errorf("%w: an unmerge names its operator", ErrInvalid)
	}
	var out []string
	err := s.retry(ctx, "unmerge", func() error {
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
		members, err := s.customerIdentifiers(ctx, tx, []string{c})
		if err != nil {
			return err
		}
		var digests []string
		for _, m := range members {
			digests = append(digests, m.digest)
		}
		l, err := s.loadGraphRows(ctx, tx, digests, nil, nil)
		if err != nil {
			return err
		}
		g := l.g
		gc, ok := g.Customer(c)
		if !ok || len(gc.Merges) == 0 {
			return fmt.Errorf("%w: customer %s has no merge to undo", ErrNotFound, id)
		}
		if observation == "" {
			observation = gc.Merges[len(gc.Merges)-1].Observation
		} else if !slices.ContainsFunc(gc.Merges, func(m identity.Merge) bool { return m.Observation == observation }) {
			return fmt.Errorf("%w: %s is not a merge of customer %s", ErrNotFound, observation, id)
		}
		uid := ids.NewEventID(s.now())
		u := identity.Unlink{Observation: observation, Stamp: s.hubStamp(uid), Operator: operator, Reason: reason}
		ch, err := g.Apply(identity.Batch{Unlinks: []identity.Unlink{u}})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cust_unlinks (id, observation, hlc, operator, reason, restore) VALUES ($1, $2, $3, $4, $5, 0)`,
			uid, observation, u.Stamp.HLC.Pack(), operator, reason); err != nil {
			return fmt.Errorf("unlink: %w", err)
		}
		// Dead, its identifiers may part ways: it is found from each.
		if err := s.postObservation(ctx, tx, observation, l.obs[observation].ids); err != nil {
			return err
		}
		if err := s.writeGraphChanges(ctx, tx, ch, l); err != nil {
			return err
		}
		if _, err := s.syncPurchaseFeed(ctx, tx, movedDigests(ch), false); err != nil {
			return err
		}
		out = ch.Customers
		return tx.Commit()
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("store: customer unmerged", "customer", id, "observation", observation, "operator", operator)
	return out, nil
}

// IdentifyRequest is an identification made through the hub's API (the
// web shop's login): identifiers seen together, with who saw them.
type IdentifyRequest struct {
	Identifiers events.CustomerRef
	Region      string
	// Source names the caller (the integration's user); Rule what linked
	// them (login, checkout; default identify).
	Source, Rule string
}

// Identify links req's identifiers, as an identify event from the web
// shop would, and returns the master id of the customer the strongest of
// them belongs to. ErrInvalid for identifiers that are malformed or all
// placeholders; nothing is written then.
func (s *Store) Identify(ctx context.Context, req IdentifyRequest) (string, error) {
	if err := events.ValidateCustomerRef("identifiers", req.Identifiers); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cids, err := s.resolveIdentifiers(req.Identifiers, req.Region)
	if err != nil {
		if errors.Is(err, ErrNoCustomerKeys) {
			return "", err
		}
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(cids) == 0 {
		return "", fmt.Errorf("%w: every identifier is a placeholder", ErrInvalid)
	}
	rule := req.Rule
	if rule == "" || rule == identity.RuleManual {
		rule = identity.RuleIdentify
	}
	now := s.now()
	id := ids.NewEventID(now)
	env := &events.Envelope{ID: id, Kind: events.KindIdentify, HLC: s.hubStamp(id).HLC, Origin: events.Origin{Device: req.Source}}
	r := s.newCustRead(env, cids, rule)
	var master string
	err = s.retry(ctx, "identify", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := s.lockCustomers(ctx, tx); err != nil {
			return err
		}
		if erased, err := s.anyErased(ctx, tx, r.digests()); err != nil || erased {
			if err == nil {
				err = fmt.Errorf("%w: customer", ErrNotFound)
			}
			return err
		}
		if _, err := s.applyObservations(ctx, tx, nil, []*custRead{r}, now.UnixMilli()); err != nil {
			return err
		}
		master, err = s.customerOfDigest(ctx, tx, r.subject)
		if err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return "", err
	}
	return master, nil
}

// anyErased reports whether any of digests has a tombstone.
func (s *Store) anyErased(ctx context.Context, q dbq, digests []string) (bool, error) {
	rs := newRowset(text("digest"))
	for _, d := range sortedUnique(digests) {
		rs.add(d)
	}
	found := false
	err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		return `SELECT t.digest FROM cust_tombstones t JOIN ` + r + ` ON t.digest = r.digest`
	}, func(rows *sql.Rows) error {
		found = true
		var d string
		return rows.Scan(&d)
	})
	return found, err
}

// ConsentRequest is a consent decision made through the hub's API.
type ConsentRequest struct {
	Purpose     string
	Granted     *bool
	Status      string
	Channel     string
	Source      string
	TextVersion string
	ExpiresAt   *time.Time
	// Operator is the caller (an HQ user or the integration).
	Operator string
}

// AddConsent records a decision for the customer id resolves to,
// attributed to the customer's anchor identifier (the identity package's
// rule for data addressed to a master id), stamped now. ErrNotFound for an
// unknown customer, ErrInvalid for a bad decision.
func (s *Store) AddConsent(ctx context.Context, id string, req ConsentRequest) (consent.Decision, error) {
	eid := ids.NewEventID(s.now())
	b := events.Consent{Purpose: req.Purpose, Granted: req.Granted, Status: req.Status, Channel: req.Channel, Source: req.Source, TextVersion: req.TextVersion, ExpiresAt: req.ExpiresAt}
	d, err := decisionOf(b, s.hubStamp(eid), consent.Evidence{Source: req.Source, TextVersion: req.TextVersion, Operator: req.Operator})
	if err != nil {
		return consent.Decision{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	err = s.retry(ctx, "consent", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := s.lockCustomers(ctx, tx); err != nil {
			return err
		}
		var anchor string
		err = tx.QueryRowContext(ctx, `SELECT m.anchor FROM cust_masters m JOIN cust_identifiers i ON `+s.d.identKey("i.digest")+` = `+s.d.identKey("m.anchor")+` WHERE m.id = $1 AND i.customer <> ''`, id).Scan(&anchor)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: customer %s", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if err := s.addDecisions(ctx, tx, map[string]bool{anchor: true}, func(add func(string, consent.Decision)) { add(anchor, d) }); err != nil {
			return err
		}
		return tx.Commit()
	})
	return d, err
}
