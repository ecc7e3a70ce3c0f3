package store

import "time"

// The ledger is keyed by day first (day, pos_id, hlc, ev_hi, ev_lo,
// line_no; see the last ledger migrations), so that a batch writes into
// the small part of the B-tree that holds today's lines rather than into
// every touched position's part of the whole history. What reads a
// position's lines over a range of stamps goes day by day: one seek per
// day that has lines, found by ledgerDaysCTE.

// hlcDay is one day in packed-HLC units.
const hlcDay = int64(24*time.Hour/time.Millisecond) << 16

// ledgerDay is the day of the ledger's key for a line stamped h (a
// packed HLC): the UTC day of its wall time, rounded down, so that a
// stamp before 1970 lands on a day of its own too. The migrations compute
// the same in SQL.
func ledgerDay(h int64) int64 {
	d := h / hlcDay
	if h%hlcDay < 0 {
		d--
	}
	return d
}

// ledgerDaysCTE is a common table expression, for a WITH RECURSIVE,
// named days(d): the days of the ledger that hold lines, from the
// day from on, in order, each found by one seek of the ledger's key, and
// last a NULL. Joined on l.day = days.d AND l.pos_id = ..., a range of a
// position's stamps costs a seek a day rather than a scan of those days'
// lines. Being part of the statement, it sees the statement's snapshot.
func ledgerDaysCTE(a *args, from int64) string {
	return `days(d) AS (SELECT (SELECT day FROM stock_ledger WHERE day >= ` + a.add(from) + ` ORDER BY day LIMIT 1)
UNION ALL SELECT (SELECT day FROM stock_ledger WHERE day > days.d ORDER BY day LIMIT 1) FROM days WHERE days.d IS NOT NULL)`
}

// ledgerOfDays is a FROM item: the rows of from (a table or CTE with
// alias) joined to their ledger lines l (l.pos_id = pos, and cond, a
// condition on l or "") of the days in days(d) (ledgerDaysCTE): a seek
// of the ledger's key per row and day. SQLite joins the days in, CROSS
// JOIN keeping that order where it would rather scan the ledger.
// PostgreSQL reads each row's lines in a LATERAL subquery (OFFSET 0 keeps
// it one) that takes the days as an array, so that the seeks are one
// index condition whatever the planner guesses: joined to the days, or
// with the days as an array in a join, it read every line of those days
// and hashed them by position.
func (s *Store) ledgerOfDays(from, pos, cond string) string {
	if cond != "" {
		cond = " AND " + cond
	}
	if s.d.pg() {
		return from + " CROSS JOIN LATERAL (SELECT * FROM stock_ledger l WHERE l.day = ANY (ARRAY(SELECT d FROM days WHERE d IS NOT NULL)) AND l.pos_id = " +
			pos + cond + " OFFSET 0) l"
	}
	return from + " CROSS JOIN days CROSS JOIN stock_ledger l ON l.day = days.d AND l.pos_id = " + pos + cond
}
