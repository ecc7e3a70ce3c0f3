package store

import (
	"context"
	"database/sql"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// An applier keeps one aggregate of the hub's books. The rules of the
// aggregate live in a pure package (inventory, reviews, ...); the applier
// only reads events into the rules' terms and turns the rules' decisions
// into rows.
//
// Adding an aggregate is a rules package, one applier file, and its entry
// in newAppliers.
type applier interface {
	// name names the aggregate in errors.
	name() string
	// read returns what the aggregate reads in env, nil when env is none
	// of its business, or an error when the aggregate's rules cannot apply
	// env: the event is then dead-lettered with the error as its reason
	// and no aggregate applies it. read runs before the transaction and
	// must not do I/O.
	read(s *Store, env *events.Envelope) (any, error)
	// apply writes the effects of the batch's applied items, in the
	// transaction. reads are the items read returned a value for, in batch
	// order.
	apply(ctx context.Context, t *applyTx, reads []itemRead) error
}

// A gate is an applier with rules that need the database to decide
// whether an event may be applied at all (a store releasing an order that
// is not its own; a count older than the ledger's retention). Gates run in
// the transaction before any applier applies, and refuse items with
// applyTx.reject: a refused item is dead-lettered with the reason, and no
// applier sees it.
type gate interface {
	gate(ctx context.Context, t *applyTx) error
}

// awaitsLedger is an applier that waits for the ledger's COPY itself
// (applyTx.awaitLedger), before its first statement, so that its work in
// the hub runs while PostgreSQL takes the COPY. The transaction waits for
// the COPY before every other applier.
type awaitsLedger interface {
	awaitsLedger()
}

// newAppliers lists the appliers in the order they run in every
// transaction. The order is both data flow and lock order (LOCKS.md): the
// reservations' hold changes and the ledger's new lines are what the stock
// positions are computed from; the positions' available stock is what the
// conflicts follow.
func newAppliers() []applier {
	return []applier{
		// The exceptions gate rewrites by HQ's mappings and holds events
		// naming unknown SKUs or locations before any aggregate sees
		// them (level 1a of LOCKS.md: its gate runs first).
		exceptionsApplier{},
		// Carts lock their rows next (level 1b of LOCKS.md); nothing
		// else reads what they write.
		cartsApplier{},
		reservationsApplier{},
		ledgerApplier{},
		stockApplier{},
		countsApplier{},
		conflictsApplier{},
		// Transfers follow the ledger's transfer halves; nothing reads
		// what they write in the transaction.
		transfersApplier{},
		reviewsApplier{},
		identityApplier{},
		profilesApplier{},
		consentApplier{},
		purchasesApplier{},
		erasureApplier{},
		surveysApplier{},
		fittingApplier{},
		// The peripherals' statuses: their own rows, read by nobody in
		// the transaction.
		peripheralsApplier{},
	}
}

// itemRead is one item an applier reads: its index in the batch and what
// read returned.
type itemRead struct {
	item int
	v    any
}

// applyTx is one attempt at applying a batch: the transaction, the items
// that take effect, and what the appliers hand to those after them.
type applyTx struct {
	s     *Store
	conn  *sql.Conn
	tx    *sql.Tx
	p     *plan
	nowMS int64
	// applied lists the items that take effect, in batch order.
	applied []int
	// rejected holds the reasons gates refused items for.
	rejected map[int]string
	// diverted are the items a gate took out of the batch without
	// dead-lettering them (held in the exception queue).
	diverted map[int]bool
	// over holds, per item, what each applier reads in the item as a gate
	// rewrote it (HQ's mappings), instead of plan.read.
	over map[int][]any

	// The inventory appliers' data flow.
	// held is the change to reserved per position from the batch's
	// reservation operations, heldAt the stamp of the newest one that
	// changed it.
	held   map[inventory.Key]int64
	heldAt map[inventory.Key]hlc.Timestamp
	// heldBy are the kinds of the reservation operations that changed
	// each position's holds, and heldHQ the positions HQ's changed: what
	// the conflicts applier names as a resolved conflict's cause.
	heldBy map[inventory.Key][]events.Kind
	heldHQ map[inventory.Key]bool
	// work is what the batch brings to each position, by id: the ledger
	// lines that were new to the ledger, the hold changes, a new safety
	// stock.
	work  map[int64]int32 // index into works
	works []positionWork
	// safety is set by SetSafetyStock.
	safety map[inventory.Key]int64
	// ids are the positions' ids the transaction resolved; those it
	// created join the store's cache only once it commits.
	ids    map[inventory.Key]int64
	newIDs map[inventory.Key]int64
	// states are the positions' states after the transaction (and their
	// rows' versions), for the store's cache of positions once it
	// commits.
	states map[int64]stockState
	// changed are the positions the stock applier wrote, for the
	// conflicts applier.
	changed []positionChange
	// counted are the counts that set a position, for the counts
	// applier.
	counted []countedAt

	// copying is the ledger's COPY while it runs on the transaction's
	// connection beside the hub's work on the batch (PostgreSQL), nil
	// otherwise; inbox is what the basket inbox takes once it is done.
	// awaitLedger ends it.
	copying chan error
	inbox   *salesEncoder

	// ensured are the keys (knownKey) of the rows the transaction
	// inserted if missing or found: known once it commits.
	ensured []string

	// cust is the customer appliers' share.
	cust custTx

	out struct {
		positions        []inventory.Key
		reservations     []string
		reviewedProducts []string
		carts            []string
		recProducts      []string
		held             int
		heldStores       []string
	}
}

// positionWork is what a batch brings to one position.
type positionWork struct {
	key    inventory.Key
	change inventory.Change
}

// workOn returns the work on position id (key), adding it if need be.
// The pointer is good until the next workOn.
func (t *applyTx) workOn(id int64, key inventory.Key) *positionWork {
	i, ok := t.work[id]
	if !ok {
		i = int32(len(t.works))
		t.works = append(t.works, positionWork{key: key})
		t.work[id] = i
	}
	return &t.works[i]
}

// positionChange is a written position's available stock before and
// after.
type positionChange struct {
	key     inventory.Key
	was, is int64
}

func newApplyTx(s *Store, conn *sql.Conn, tx *sql.Tx, p *plan, nowMS int64, applied []int) *applyTx {
	return &applyTx{
		s: s, conn: conn, tx: tx, p: p, nowMS: nowMS, applied: applied,
		held: map[inventory.Key]int64{}, heldAt: map[inventory.Key]hlc.Timestamp{},
		heldBy: map[inventory.Key][]events.Kind{}, heldHQ: map[inventory.Key]bool{},
		work: map[int64]int32{},
		ids:  map[inventory.Key]int64{}, newIDs: map[inventory.Key]int64{},
		states: map[int64]stockState{},
	}
}

// reject refuses item i (a gate's decision), with the reason it is
// dead-lettered for.
func (t *applyTx) reject(i int, reason string) {
	if t.rejected == nil {
		t.rejected = map[int]string{}
	}
	t.rejected[i] = reason
}

// readsOf returns the items (among those not refused yet) that applier a
// reads: what a gate looks at.
func (t *applyTx) readsOf(a applier) []itemRead {
	for i, ap := range t.s.appliers {
		if ap == a {
			return t.readBy(i)
		}
	}
	return nil
}

// readBy returns the applied items applier a reads, in batch order.
func (t *applyTx) readBy(a int) []itemRead {
	if t.p == nil {
		return nil
	}
	// Two passes, so the result is allocated once at its size: most
	// appliers read few of a batch's items, the inventory ones all.
	n := 0
	t.eachRead(a, func(int, any) { n++ })
	if n == 0 {
		return nil
	}
	out := make([]itemRead, 0, n)
	t.eachRead(a, func(i int, v any) { out = append(out, itemRead{item: i, v: v}) })
	return out
}

// eachRead calls f with each applied item applier a reads and what it
// reads in it, in batch order.
func (t *applyTx) eachRead(a int, f func(i int, v any)) {
	for _, i := range t.applied {
		if t.rejected[i] != "" || t.diverted[i] {
			continue
		}
		var v any
		if t.p.read[a] != nil {
			v = t.p.read[a][i]
		}
		if o, ok := t.over[i]; ok {
			v = o[a]
		}
		if v != nil {
			f(i, v)
		}
	}
}

// commitFailed runs when the commit failed: the database may or may not
// hold the transaction, so the store's cache of positions, which must not
// be wrong, starts over.
func (t *applyTx) commitFailed() {
	if t.s.states != nil {
		t.s.states.reset()
	}
}

// committed runs after the commit: what the transaction created may now
// be shared.
func (t *applyTx) committed() {
	t.s.known.add(t.ensured)
	t.s.positions.add(t.newIDs)
	if t.s.states != nil {
		t.s.states.add(t.states)
	}
}

// awaitLedger waits for the ledger's COPY started by the ledger applier,
// if one runs, and writes the basket inbox its sale lines feed. Every
// statement after the ledger applier's runs after it: one that did not
// would wait for the connection anyway (database/sql locks it while the
// COPY holds it), but would then meet a transaction the COPY may have
// aborted, and hide the COPY's own error (errLedgerSeen, which has the
// batch redone).
func (t *applyTx) awaitLedger(ctx context.Context) error {
	if t.copying == nil {
		return nil
	}
	err := <-t.copying
	t.copying = nil
	if err != nil {
		return err
	}
	inbox := t.inbox
	t.inbox = nil
	return putInbox(ctx, t.tx, inbox)
}

// settleLedger waits for a COPY still running when the transaction is
// abandoned, so that nothing of it outlives the attempt.
func (t *applyTx) settleLedger() {
	if t.copying != nil {
		<-t.copying
		t.copying = nil
	}
}
