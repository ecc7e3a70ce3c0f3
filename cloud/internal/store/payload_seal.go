package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"github.com/omnisync/omnisync/shared/events"
)

// Dead letters and held exceptions keep the message they refused, so that
// HQ can replay it after a fix. A message naming a customer carries
// personal data (identifiers, attributes, a survey comment), and a dead
// letter is read by more people than the customer books are (a store
// manager reads her stores'). Such a message is kept sealed with the
// customer keys in payload_enc, its payload column left empty: no listing
// shows it, a replay opens it, a key rotation re-seals it, and erasing its
// customer empties it.

// sealedPayloadAD is the additional data payloads are sealed with: not
// bound to a row, since a dead letter's id is made by its insert.
const sealedPayloadAD = "refused.payload"

// personalKinds are the kinds whose body is about a customer.
var personalKinds = map[events.Kind]bool{
	events.KindIdentify: true, events.KindUpdate: true, events.KindConsent: true, events.KindErase: true,
	events.KindSurvey: true, events.KindClaim: true, events.KindLineSet: true, events.KindCheckout: true,
}

// mayBePersonal reports whether a refused message may carry personal
// data: a customer kind, or any message with a customer field (a sale or a
// return naming its shopper). A message too broken to decode is judged by
// its bytes alone.
func mayBePersonal(kind string, payload []byte) bool {
	return personalKinds[events.Kind(kind)] || bytes.Contains(payload, []byte(`"customer`))
}

// sealPayload returns what to store of a refused message: in clear, or
// sealed (plain empty) when it may carry personal data and the hub has
// customer keys. Without keys there is nothing to seal with; the hub
// always has them (it makes them on first start), only bare stores in
// tests do not.
func (s *Store) sealPayload(kind string, payload []byte) (plain, enc []byte) {
	if s.custKeys == nil || len(payload) == 0 || !mayBePersonal(kind, payload) {
		return nonNil(payload), []byte{}
	}
	return []byte{}, s.custKeys.Seal(payload, sealedPayloadAD)
}

// openPayload returns the refused message stored as plain or enc.
func (s *Store) openPayload(plain, enc []byte) ([]byte, error) {
	if len(enc) == 0 {
		return plain, nil
	}
	if s.custKeys == nil {
		return nil, ErrNoCustomerKeys
	}
	out, err := s.custKeys.Open(enc, sealedPayloadAD)
	if err != nil {
		return nil, fmt.Errorf("open refused message: %w", err)
	}
	return out, nil
}

// refusedTables hold refused messages, sealed or not.
var refusedTables = []string{"dead_letters", "exception_events"}

// eraseRefusedPayloads empties, in tx, the sealed messages that name any
// of digests (the identifiers of a customer being erased): the record of
// the refusal stays, what it said of the person does not. A message whose
// identifiers cannot be read (the reason it was refused, often) cannot be
// told to be theirs and is kept sealed.
func (s *Store) eraseRefusedPayloads(ctx context.Context, tx *sql.Tx, digests []string) error {
	if s.custKeys == nil || len(digests) == 0 {
		return nil
	}
	erased := make(map[string]bool, len(digests))
	for _, d := range digests {
		erased[d] = true
	}
	for _, table := range refusedTables {
		rows, err := tx.QueryContext(ctx, `SELECT id, payload_enc FROM `+table+` WHERE payload_enc IS NOT NULL AND length(payload_enc) > 0`)
		if err != nil {
			return fmt.Errorf("erasure: refused messages: %w", err)
		}
		var hit []int64
		for rows.Next() {
			var id int64
			var enc []byte
			if err := rows.Scan(&id, &enc); err != nil {
				rows.Close()
				return err
			}
			if s.namesAny(enc, erased) {
				hit = append(hit, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range hit {
			if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET payload_enc = $1 WHERE id = $2`, []byte{}, id); err != nil {
				return fmt.Errorf("erasure: empty refused message: %w", err)
			}
		}
	}
	return nil
}

// namesAny reports whether the sealed message enc names a customer
// identifier among erased (digests).
func (s *Store) namesAny(enc []byte, erased map[string]bool) bool {
	raw, err := s.custKeys.Open(enc, sealedPayloadAD)
	if err != nil {
		return false
	}
	env, err := events.Decode(raw)
	if err != nil {
		return false
	}
	r, err := s.readCustomer(&env)
	if err != nil || r == nil {
		return false
	}
	for _, d := range r.digests() {
		if erased[d] {
			return true
		}
	}
	return false
}
