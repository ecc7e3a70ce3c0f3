// Package rfm segments customers by recency, frequency and monetary value
// (RFM) and keeps average order value (AOV), both updated sale by sale. It
// is pure (no I/O, no clock): the hub feeds it sales as they are applied and
// reads scores, segments and AOV from it.
//
// # Scores
//
// Each customer who has bought gets three scores from 1 to 5, the quintile
// of their value among all customers who have bought: R from the time of
// their latest purchase, F from their number of orders, M from their net
// spend (purchases less refunds). With L of the n customers strictly below a
// value,
//
//	score = 1 + ⌊5·L/n⌋
//
// so ties share the lower score and the scores of a set of sales are the
// same whatever order the sales arrive in (every per-customer total is a
// maximum, a count or an integer sum). See Book for how a sale updates the
// scores incrementally and what it costs.
//
// # Segments
//
// A customer's segment is read from the table below by R (rows) and FM,
// the mean of F and M rounded half up (columns):
//
//	R \ FM  1                    2                    3                    4                    5
//	5       New customers        Potential loyalists  Potential loyalists  Champions            Champions
//	4       Promising            Potential loyalists  Potential loyalists  Loyal customers      Champions
//	3       About to sleep       About to sleep       Need attention       Loyal customers      Loyal customers
//	2       Hibernating          Hibernating          At risk              At risk              Can't lose them
//	1       Lost                 Hibernating          At risk              Can't lose them      Can't lose them
//
// In words: champions bought recently, often and for much; loyal customers
// buy often and well but not the most recently; potential loyalists and
// new customers are recent with little history yet (new customers the
// least); promising ones are fairly recent but small; those needing
// attention are average on every count; those about to sleep are below
// average and fading; at risk are good customers who have not come back for
// a while, and can't-lose-them were among the best but are now the least
// recent; hibernating ones were small and long ago, and lost ones the
// smallest and the longest ago.
//
// # AOV
//
// AOV is net revenue over orders (refunds lower revenue and count no
// order), in minor currency units: AOVBook keeps it overall, by store and
// by channel; Book.Summary gives it by segment.
//
// Sharp edges: scores are relative, so with few customers they say little
// (a single customer scores 111); a sale moves other customers' scores too,
// so a page that shows "movement" compares snapshots; Add is not
// idempotent.
package rfm
