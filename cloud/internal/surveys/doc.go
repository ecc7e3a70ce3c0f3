// Package surveys scores customer-experience surveys: NPS, CSAT and CES
// answers in, one answer per respondent, scores with confidence intervals
// by store, channel and ISO week out; and it takes personal data out of
// free-text comments before anyone but a moderator reads them. It is pure
// (no I/O, no clock), so every hub replica, given the same answers in any
// order, reports the same scores.
//
// # Scales and scores
//
//   - NPS (0–10): promoters answer 9–10, passives 7–8, detractors 0–6;
//     the score is %promoters − %detractors, from −100 to 100.
//   - CSAT (1–5): the score is the % of satisfied answers, 4 or 5.
//   - CES (1–7): the score is the mean answer.
//
// # Confidence intervals
//
// Each score comes with an interval at the level asked for (0.95 for 95%):
//
//   - NPS: the adjusted Wald interval of Rocks (2016, Interval Estimation
//     for the Net Promoter Score, The American Statistician 70(4)): add 3
//     to n and ¾ to the promoters and to the detractors, then take the
//     adjusted difference ± z·√((p₊ + p₋ − (p₊ − p₋)²)/n), the variance of
//     a difference of two multinomial proportions. The adjustment keeps the
//     interval honest for small n (a single promoter does not give [100,
//     100]). Clamped to [−100, 100].
//   - CSAT: the Wilson score interval for a proportion, which stays inside
//     [0, 100] and behaves for small n and proportions near 0 or 1.
//   - CES: the Student t interval, mean ± t(n−1)·s/√n, clamped to [1, 7];
//     with a single answer there is no spread to measure and the interval
//     is the whole scale.
//
// # One answer per respondent
//
// An answer belongs to a respondent of a survey: a receipt (the QR on it)
// or a customer. Partial answers (the respondent stopped before
// submitting) are kept and count if they carry a score. Of a respondent's
// answers to a survey exactly one counts: a complete answer beats any
// partial one, and between two of the same completeness the later by HLC
// wins (a later partial carries more of the answer, a later complete one is
// the respondent's correction); equal HLCs fall to the greater event id.
// That makes the choice a maximum over a total order: the same answer wins
// whatever order the answers arrive in, and an answer delivered twice (a
// kiosk resending after reconnecting) counts once.
//
// # Redaction
//
// Redact replaces e-mail addresses, phone-like and card-like numbers and
// the words after "my name is" (and its French, German, Spanish, Italian
// and Dutch forms) with [email], [phone], [card], [number] and [name]. It
// is a safety net, not a guarantee: see its documentation for what it
// misses.
package surveys
