package store

import (
	"cmp"
	"context"
	"fmt"
)

// sealedColumn is a table column holding sealed values, with the columns
// its additional data is made of (sealAD), under the name ad (the table's
// when empty).
type sealedColumn struct {
	table, col string
	key        []string
	ad         string
	// unbound: sealed with ad alone, not bound to the row's key (a
	// refused message is sealed before its row id exists).
	unbound bool
}

var sealedColumns = []sealedColumn{
	{"cust_identifiers", "value_enc", []string{"digest"}, "", false},
	{"cust_profile", "value_enc", []string{"subject", "field"}, "", false},
	{"cust_erasure_identifiers", "value_enc", []string{"erasure", "digest"}, "", false},
	{"survey_answers", "comment_enc", []string{"survey", "respondent"}, "survey_answers.comment_enc", false},
	{"survey_answers", "redacted_enc", []string{"survey", "respondent"}, "survey_answers.redacted_enc", false},
	{"automation_rules", "secret_enc", []string{"id"}, "automation_rules.secret_enc", false},
	{"dead_letters", "payload_enc", []string{"id"}, sealedPayloadAD, true},
	{"exception_events", "payload_enc", []string{"id"}, sealedPayloadAD, true},
}

// RekeyCustomers re-seals, under the current sealing key, every sealed
// value sealed under another one, batch by batch (each its own
// transaction, under the customers' lock), and returns how many it
// re-sealed. Run it after adding a sealing key; once it returns, the old
// keys can leave the key file. A value that does not open (its key is
// gone) is an error: nothing is lost by stopping.
func (s *Store) RekeyCustomers(ctx context.Context, batch int) (int, error) {
	if s.custKeys == nil {
		return 0, ErrNoCustomerKeys
	}
	if batch <= 0 {
		batch = 1000
	}
	total := 0
	for _, c := range sealedColumns {
		for {
			n, err := s.rekeyBatch(ctx, c, batch)
			total += n
			if err != nil {
				return total, err
			}
			if n < batch {
				break
			}
		}
	}
	return total, nil
}

// rekeyBatch re-seals up to limit stale values of c.
func (s *Store) rekeyBatch(ctx context.Context, c sealedColumn, limit int) (int, error) {
	n := 0
	err := s.retry(ctx, "rekey customers", func() error {
		n = 0
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := s.lockCustomers(ctx, tx); err != nil {
			return err
		}
		cols := ""
		for _, k := range c.key {
			cols += k + ", "
		}
		// Key ids are in bytes 2..5 of a sealed value (big endian); the
		// scan compares in Go, so both databases run the same query.
		rows, err := tx.QueryContext(ctx, `SELECT `+cols+c.col+` FROM `+c.table+` WHERE `+c.col+` IS NOT NULL ORDER BY `+s.d.keyed(c.table, c.key[0], c.key[0]))
		if err != nil {
			return err
		}
		type upd struct {
			key []string
			val []byte
		}
		var ups []upd
		for rows.Next() && len(ups) < limit {
			key := make([]string, len(c.key))
			dst := make([]any, 0, len(key)+1)
			for i := range key {
				dst = append(dst, &key[i])
			}
			var enc []byte
			dst = append(dst, &enc)
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return err
			}
			if !s.custKeys.Stale(enc) {
				continue
			}
			ad := sealAD(cmp.Or(c.ad, c.table), key...)
			if c.unbound {
				ad = c.ad
			}
			plain, err := s.custKeys.Open(enc, ad)
			if err != nil {
				rows.Close()
				return fmt.Errorf("rekey %s: %w", c.table, err)
			}
			ups = append(ups, upd{key, s.custKeys.Seal(plain, ad)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, u := range ups {
			q := `UPDATE ` + c.table + ` SET ` + c.col + ` = $1 WHERE `
			a := []any{u.val}
			for i, k := range c.key {
				if i > 0 {
					q += " AND "
				}
				a = append(a, u.key[i])
				q += s.d.keyed(c.table, k, k) + " = " + s.d.keyed(c.table, k, fmt.Sprintf("$%d", len(a)))
			}
			if _, err := tx.ExecContext(ctx, q, a...); err != nil {
				return fmt.Errorf("rekey %s: %w", c.table, err)
			}
		}
		n = len(ups)
		return tx.Commit()
	})
	return n, err
}
