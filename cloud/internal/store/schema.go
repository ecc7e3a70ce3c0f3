package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migrations are applied in order, each once, each in its own transaction.
// Never edit one that has shipped: append a new one. {{key}} is a text type
// that compares bytewise on both databases (COLLATE "C" on PostgreSQL), so
// SQL ORDER BY, keyset cursors and lock order agree with Go's string order.
var migrations = []string{
	// 1: the whole first schema.
	`
-- Exact dedup per (store, device, epoch): every seq <= watermark has been
-- processed; above lists the processed seqs beyond it as ranges "a-b,c".
CREATE TABLE device_progress (
	store           {{key}} NOT NULL,
	device          {{key}} NOT NULL,
	epoch           BIGINT NOT NULL,
	watermark       BIGINT NOT NULL DEFAULT 0,
	above           TEXT NOT NULL DEFAULT '',
	events_applied  BIGINT NOT NULL DEFAULT 0,
	dead_lettered   BIGINT NOT NULL DEFAULT 0,
	last_event_hlc  BIGINT NOT NULL DEFAULT 0,
	last_applied_ms BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (store, device, epoch)
){{keyed}};

-- The latest heartbeat of each device.
CREATE TABLE device_heartbeats (
	store             {{key}} NOT NULL,
	device            {{key}} NOT NULL,
	version           TEXT NOT NULL DEFAULT '',
	epoch             BIGINT NOT NULL DEFAULT 0,
	backlog           BIGINT NOT NULL DEFAULT 0,
	oldest_unacked_ms BIGINT NOT NULL DEFAULT 0,
	clock_skew_ms     BIGINT NOT NULL DEFAULT 0,
	connected         INTEGER NOT NULL DEFAULT 0,
	at_ms             BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (store, device)
){{keyed}};

-- One row per stock position. available = on_hand - reserved - safety is
-- stored so low-stock queries can filter on it. count_* is the latest count
-- (count_hlc is a packed HLC, count_id its event id), last_hlc is the newest
-- HLC applied (the "as of"); conflict_id the open oversell conflict or 0.
CREATE TABLE stock (
	sku         {{key}} NOT NULL,
	location    {{key}} NOT NULL,
	on_hand     BIGINT NOT NULL DEFAULT 0,
	reserved    BIGINT NOT NULL DEFAULT 0,
	safety      BIGINT NOT NULL DEFAULT 0,
	available   BIGINT NOT NULL DEFAULT 0,
	has_count   INTEGER NOT NULL DEFAULT 0,
	count_qty   BIGINT NOT NULL DEFAULT 0,
	count_hlc   BIGINT NOT NULL DEFAULT 0,
	count_id    {{key}} NOT NULL DEFAULT '',
	last_hlc    BIGINT NOT NULL DEFAULT 0,
	conflict_id BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (sku, location)
){{keyed_hot}};
CREATE INDEX stock_by_location ON stock (location, sku);

-- Every applied stock line (deltas, counts with delta 0, fulfils): the sales
-- history, and what a newer count sums over ("deltas stamped after it": a
-- range of the primary key). An event fixes the sku, location and hlc of its
-- lines, so the key is unique per (event_id, line_no) too.
CREATE TABLE stock_ledger (
	sku      {{key}} NOT NULL,
	location {{key}} NOT NULL,
	hlc      BIGINT NOT NULL,
	event_id {{key}} NOT NULL,
	line_no  INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	qty      BIGINT NOT NULL,
	delta    BIGINT NOT NULL,
	store    {{key}} NOT NULL,
	PRIMARY KEY (sku, location, hlc, event_id, line_no)
){{keyed}};

-- Reservations in any arrival order: reserve_* from the newest reserve,
-- closed_* from the earliest release or fulfil; active = reserved and not
-- closed. reservation_lines holds the newest reserve's lines.
CREATE TABLE reservations (
	reservation_id {{key}} NOT NULL PRIMARY KEY,
	location       {{key}} NOT NULL DEFAULT '',
	reserved       INTEGER NOT NULL DEFAULT 0,
	reserve_hlc    BIGINT NOT NULL DEFAULT 0,
	reserve_id     {{key}} NOT NULL DEFAULT '',
	closed         INTEGER NOT NULL DEFAULT 0,
	closed_hlc     BIGINT NOT NULL DEFAULT 0,
	closed_id      {{key}} NOT NULL DEFAULT '',
	closed_kind    TEXT NOT NULL DEFAULT '',
	active         INTEGER NOT NULL DEFAULT 0,
	updated_ms     BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE TABLE reservation_lines (
	reservation_id {{key}} NOT NULL,
	sku            {{key}} NOT NULL,
	location       {{key}} NOT NULL,
	qty            BIGINT NOT NULL,
	PRIMARY KEY (reservation_id, sku, location)
){{keyed}};
CREATE INDEX reservation_lines_by_position ON reservation_lines (sku, location);

-- Reconciliation conflicts; resolved_ms = 0 while open, at most one open
-- per position.
CREATE TABLE conflicts (
	id          {{id}},
	sku         {{key}} NOT NULL,
	location    {{key}} NOT NULL,
	kind        TEXT NOT NULL,
	available   BIGINT NOT NULL,
	opened_ms   BIGINT NOT NULL,
	updated_ms  BIGINT NOT NULL,
	resolved_ms BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX conflicts_one_open ON conflicts (sku, location) WHERE resolved_ms = 0;
CREATE INDEX conflicts_by_state ON conflicts (resolved_ms, id);

-- Messages the hub could not apply, kept verbatim.
CREATE TABLE dead_letters (
	id       {{id}},
	event_id TEXT NOT NULL DEFAULT '',
	store    {{key}} NOT NULL DEFAULT '',
	device   TEXT NOT NULL DEFAULT '',
	epoch    BIGINT NOT NULL DEFAULT 0,
	seq      BIGINT NOT NULL DEFAULT 0,
	kind     TEXT NOT NULL DEFAULT '',
	subject  TEXT NOT NULL DEFAULT '',
	reason   TEXT NOT NULL DEFAULT '',
	payload  {{blob}},
	at_ms    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dead_letters_by_store ON dead_letters (store, id);
`,
	// 2: the catalog, reviews, and what down-sync needs to publish stock.
	`
-- Products and their variants, as imported. version grows by one whenever
-- the product or any of its variants changes; it is the version of the
-- product's down-sync document.
CREATE TABLE products (
	product_id {{key}} NOT NULL PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	brand      TEXT NOT NULL DEFAULT '',
	category   TEXT NOT NULL DEFAULT '',
	image_url  TEXT NOT NULL DEFAULT '',
	version    BIGINT NOT NULL DEFAULT 0,
	updated_ms BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX products_by_updated ON products (updated_ms);

-- gtins: the variant's GTIN-14s, primary first, comma-separated;
-- variant_gtins indexes them (a GTIN names one SKU).
CREATE TABLE variants (
	sku         {{key}} NOT NULL PRIMARY KEY,
	product_id  {{key}} NOT NULL,
	name        TEXT NOT NULL DEFAULT '',
	brand       TEXT NOT NULL DEFAULT '',
	size        TEXT NOT NULL DEFAULT '',
	colour      TEXT NOT NULL DEFAULT '',
	price_minor BIGINT NOT NULL DEFAULT 0,
	currency    TEXT NOT NULL DEFAULT '',
	image_url   TEXT NOT NULL DEFAULT '',
	category    TEXT NOT NULL DEFAULT '',
	gtins       TEXT NOT NULL DEFAULT '',
	updated_ms  BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX variants_by_product ON variants (product_id, sku);
CREATE TABLE variant_gtins (
	gtin {{key}} NOT NULL PRIMARY KEY,
	sku  {{key}} NOT NULL
){{keyed}};
CREATE INDEX variant_gtins_by_sku ON variant_gtins (sku);

-- One row per catalog import, for HQ's audit trail.
CREATE TABLE catalog_imports (
	id               {{id}},
	at_ms            BIGINT NOT NULL,
	source           TEXT NOT NULL DEFAULT '',
	mode             TEXT NOT NULL DEFAULT '',
	rows_read        BIGINT NOT NULL DEFAULT 0,
	rows_accepted    BIGINT NOT NULL DEFAULT 0,
	rows_rejected    BIGINT NOT NULL DEFAULT 0,
	products_changed BIGINT NOT NULL DEFAULT 0
);

-- Reviews: one per (product, store, device, session), the earliest by HLC
-- wins whatever the arrival order. status is published or rejected (with
-- reason: blocked words); rejected ones are kept for moderators.
CREATE TABLE reviews (
	product_id {{key}} NOT NULL,
	store      {{key}} NOT NULL,
	device     {{key}} NOT NULL,
	session    {{key}} NOT NULL,
	event_id   {{key}} NOT NULL,
	hlc        BIGINT NOT NULL,
	sku        TEXT NOT NULL DEFAULT '',
	rating     INTEGER NOT NULL,
	title      TEXT NOT NULL DEFAULT '',
	body       TEXT NOT NULL DEFAULT '',
	nickname   TEXT NOT NULL DEFAULT '',
	status     TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (product_id, store, device, session)
){{keyed}};
CREATE INDEX reviews_latest ON reviews (product_id, status, hlc);

-- review_stats.version grows whenever a product's reviews change; it is
-- the version of the product's review summary document.
CREATE TABLE review_stats (
	product_id {{key}} NOT NULL PRIMARY KEY,
	version    BIGINT NOT NULL DEFAULT 0,
	updated_ms BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX review_stats_by_updated ON review_stats (updated_ms);

-- A stock position's version grows with every change; updated_ms says when,
-- so a hub replica can republish what changed while another one was down.
ALTER TABLE stock ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE stock ADD COLUMN updated_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX stock_by_updated ON stock (updated_ms);
`,
	// 3: pickup orders in down-sync. A reservation's version grows with
	// every change, like a stock position's; it is the version of its
	// pickup document, and updated_ms lets a replica find what changed.
	`
ALTER TABLE reservations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX reservations_by_updated ON reservations (updated_ms);
`,
	// 4: integer position ids and event keys in the hot tables, daily ledger totals for
	// retention, and the hub's shared settings. The stock table is rebuilt
	// around an integer id (the ledger and every write of the apply path
	// name positions by it); a position's open conflict is no longer
	// stored with it, since it is open exactly while available < 0. Stock
	// is no longer indexed by updated_ms, so that updating a position
	// touches no index (PostgreSQL keeps the update HOT); the down-sync
	// sweep reads the table instead.
	`
CREATE TABLE stock_v4 (
	id          {{serial}},
	sku         {{key}} NOT NULL,
	location    {{key}} NOT NULL,
	on_hand     BIGINT NOT NULL DEFAULT 0,
	reserved    BIGINT NOT NULL DEFAULT 0,
	safety      BIGINT NOT NULL DEFAULT 0,
	available   BIGINT NOT NULL DEFAULT 0,
	has_count   INTEGER NOT NULL DEFAULT 0,
	count_qty   BIGINT NOT NULL DEFAULT 0,
	count_hlc   BIGINT NOT NULL DEFAULT 0,
	count_id    {{key}} NOT NULL DEFAULT '',
	last_hlc    BIGINT NOT NULL DEFAULT 0,
	version     BIGINT NOT NULL DEFAULT 0,
	updated_ms  BIGINT NOT NULL DEFAULT 0
){{hot}};
INSERT INTO stock_v4 (sku, location, on_hand, reserved, safety, available, has_count, count_qty, count_hlc, count_id, last_hlc, version, updated_ms)
SELECT sku, location, on_hand, reserved, safety, available, has_count, count_qty, count_hlc, count_id, last_hlc, version, updated_ms
FROM stock ORDER BY sku, location;
DROP TABLE stock;
ALTER TABLE stock_v4 RENAME TO stock;
CREATE UNIQUE INDEX stock_key ON stock (sku, location);
CREATE INDEX stock_by_location ON stock (location, sku);

-- The ledger names positions by id, and events by their UUID as two
-- integers (eventid.go): ev_hi and ev_lo order as the ids' text does. Its
-- key orders a position's lines by stamp (what a newer count sums over)
-- and, since an event fixes the position, stamp and line of each of its
-- lines, it is also unique per (event id, line_no).
CREATE TABLE ledger_v4 (
	pos_id   BIGINT NOT NULL,
	hlc      BIGINT NOT NULL,
	ev_hi    BIGINT NOT NULL,
	ev_lo    BIGINT NOT NULL,
	line_no  INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	qty      BIGINT NOT NULL,
	delta    BIGINT NOT NULL,
	store    {{key}} NOT NULL,
	PRIMARY KEY (pos_id, hlc, ev_hi, ev_lo, line_no)
){{keyed}};
INSERT INTO ledger_v4 (pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store)
SELECT s.id, l.hlc, {{evhi:l.event_id}}, {{evlo:l.event_id}}, l.line_no, l.kind, l.qty, l.delta, l.store
FROM stock_ledger l JOIN stock s ON s.sku = l.sku AND s.location = l.location;
DROP TABLE stock_ledger;
ALTER TABLE ledger_v4 RENAME TO stock_ledger;

-- Ledger lines older than the retention age, rolled up per position, UTC
-- day (of their HLC) and kind before they are deleted: the sales history
-- analytics keep.
CREATE TABLE ledger_daily (
	pos_id BIGINT NOT NULL,
	day    INTEGER NOT NULL,
	kind   {{key}} NOT NULL,
	lines  BIGINT NOT NULL,
	qty    BIGINT NOT NULL,
	delta  BIGINT NOT NULL,
	PRIMARY KEY (pos_id, day, kind)
){{keyed}};

-- Every release and fulfil of a reservation ("hlc|event id|kind|location|
-- online" each, ';' between them): which one closes it depends on the
-- newest reserve's location, so none is forgotten. The close of a
-- reservation closed before this version keeps counting (online = 1).
ALTER TABLE reservations ADD COLUMN closes TEXT NOT NULL DEFAULT '';
UPDATE reservations SET closes = CAST(closed_hlc AS TEXT) || '|' || closed_id || '|' || closed_kind || '|' || location || '|1' WHERE closed = 1;

-- Moderators' decisions on reviews, and the moderation queue.
ALTER TABLE reviews ADD COLUMN moderated_by TEXT NOT NULL DEFAULT '';
ALTER TABLE reviews ADD COLUMN moderated_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX reviews_by_event ON reviews (event_id);
CREATE INDEX reviews_by_status ON reviews (status, hlc);

-- The hub's shared configuration (the review policy, the ledger's
-- retention horizon): one row per setting, read by every replica.
CREATE TABLE hub_settings (
	name       {{key}} NOT NULL PRIMARY KEY,
	value      TEXT NOT NULL,
	version    BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL
){{keyed}};
`,
	// 5: HQ identities (see auth.go). Secrets are never stored: a
	// password as its argon2id hash, a session and an API token as the
	// SHA-256 of the random secret the client holds. stores lists a store
	// manager's stores, comma-separated; scopes an API token's scopes,
	// space-separated (empty: the user's own rights). Times are unix ms,
	// 0 meaning never.
	`
CREATE TABLE auth_users (
	id         {{id}},
	name       {{key}} NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	stores     TEXT NOT NULL DEFAULT '',
	password   TEXT NOT NULL DEFAULT '',
	disabled   INTEGER NOT NULL DEFAULT 0,
	created_ms BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL
);

CREATE TABLE auth_sessions (
	hash       {{key}} NOT NULL PRIMARY KEY,
	user_id    BIGINT NOT NULL,
	created_ms BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL,
	seen_ms    BIGINT NOT NULL
){{keyed}};
CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id);

CREATE TABLE auth_tokens (
	id           {{id}},
	hash         {{key}} NOT NULL UNIQUE,
	user_id      BIGINT NOT NULL,
	name         TEXT NOT NULL,
	scopes       TEXT NOT NULL DEFAULT '',
	created_ms   BIGINT NOT NULL,
	expires_ms   BIGINT NOT NULL DEFAULT 0,
	last_used_ms BIGINT NOT NULL DEFAULT 0,
	revoked_ms   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_by_user ON auth_tokens (user_id);
`,
	// Carts (package carts): a cart's lines, owner, version and checkouts,
	// and the stock a cart holds while the shopper fills it.
	`
-- One row per cart. customer is the owner's opaque master id ('' while
-- anonymous), from the earliest claim (claim_hlc, claim_event); version
-- counts the line_set events applied; updated_* is the newest of them
-- (updated_wall its HLC wall time, for abandoned carts); checkouts counts
-- checkouts (the first closed the cart, others are conflicts);
-- abandoned_ms when the hub found it abandoned (0: not).
CREATE TABLE carts (
	cart_id       {{key}} NOT NULL PRIMARY KEY,
	customer      {{key}} NOT NULL DEFAULT '',
	claim_hlc     BIGINT NOT NULL DEFAULT 0,
	claim_event   {{key}} NOT NULL DEFAULT '',
	version       BIGINT NOT NULL DEFAULT 0,
	updated_hlc   BIGINT NOT NULL DEFAULT 0,
	updated_event {{key}} NOT NULL DEFAULT '',
	updated_wall  BIGINT NOT NULL DEFAULT 0,
	checkouts     BIGINT NOT NULL DEFAULT 0,
	channel       TEXT NOT NULL DEFAULT '',
	created_ms    BIGINT NOT NULL DEFAULT 0,
	changed_ms    BIGINT NOT NULL DEFAULT 0,
	abandoned_ms  BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX carts_customer ON carts (customer, cart_id);
CREATE INDEX carts_idle ON carts (updated_wall) WHERE checkouts = 0 AND customer <> '' AND abandoned_ms = 0;

-- Each line's newest edit (last-writer-wins by hlc, event_id); qty 0 is a
-- removed line; price -1: none given.
CREATE TABLE cart_lines (
	cart_id  {{key}} NOT NULL,
	sku      {{key}} NOT NULL,
	qty      BIGINT NOT NULL,
	price    BIGINT NOT NULL DEFAULT -1,
	hlc      BIGINT NOT NULL,
	event_id {{key}} NOT NULL,
	PRIMARY KEY (cart_id, sku)
){{keyed}};

-- Every checkout of a cart, by stamp.
CREATE TABLE cart_checkouts (
	cart_id     {{key}} NOT NULL,
	hlc         BIGINT NOT NULL,
	event_id    {{key}} NOT NULL,
	version     BIGINT NOT NULL,
	store       {{key}} NOT NULL,
	location    TEXT NOT NULL DEFAULT '',
	sale_id     TEXT NOT NULL DEFAULT '',
	order_id    TEXT NOT NULL DEFAULT '',
	recorded_ms BIGINT NOT NULL,
	PRIMARY KEY (cart_id, hlc, event_id)
){{keyed}};

-- A cart's reservations (reserve on cart): reservation_id is
-- cart-<cart id>-<n>; expires_ms when the hub releases it; released once a
-- release or fulfil of it was applied.
CREATE TABLE cart_holds (
	reservation_id {{key}} NOT NULL PRIMARY KEY,
	cart_id        {{key}} NOT NULL,
	location       {{key}} NOT NULL,
	expires_ms     BIGINT NOT NULL,
	released       INTEGER NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX cart_holds_cart ON cart_holds (cart_id, reservation_id);
CREATE INDEX cart_holds_expiry ON cart_holds (expires_ms) WHERE released = 0;
`,
	// Surveys (apply_surveys.go, surveys.go): HQ's survey definitions; one
	// answer per (survey, respondent), its parts merged from the
	// respondent's answers (the score and the comment each from the best
	// answer that has one, with that answer's stamp); the receipts' QR
	// tokens, by hash. comment is for moderators only; everyone else reads
	// redacted.
	`
CREATE TABLE surveys (
	id         {{key}} NOT NULL PRIMARY KEY,
	kind       TEXT NOT NULL,
	question   TEXT NOT NULL,
	comment_prompt TEXT NOT NULL DEFAULT '',
	active     INTEGER NOT NULL DEFAULT 1,
	created_ms BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL
){{keyed}};

CREATE TABLE survey_answers (
	survey     {{key}} NOT NULL,
	respondent {{key}} NOT NULL,
	event_id   {{key}} NOT NULL,
	hlc        BIGINT NOT NULL,
	complete   INTEGER NOT NULL,
	scored     INTEGER NOT NULL,
	score      INTEGER NOT NULL,
	comment    TEXT NOT NULL,
	redacted   TEXT NOT NULL,
	store      {{key}} NOT NULL,
	channel    {{key}} NOT NULL,
	at_ms      BIGINT NOT NULL,
	score_complete   INTEGER NOT NULL DEFAULT 0,
	score_hlc        BIGINT NOT NULL DEFAULT 0,
	score_event      {{key}} NOT NULL DEFAULT '',
	comment_complete INTEGER NOT NULL DEFAULT 0,
	comment_hlc      BIGINT NOT NULL DEFAULT 0,
	comment_event    {{key}} NOT NULL DEFAULT '',
	PRIMARY KEY (survey, respondent)
){{keyed}};
CREATE INDEX survey_answers_by_time ON survey_answers (survey, at_ms);

CREATE TABLE survey_tokens (
	hash       {{key}} NOT NULL PRIMARY KEY,
	survey     {{key}} NOT NULL,
	respondent {{key}} NOT NULL,
	store      {{key}} NOT NULL,
	created_ms BIGINT NOT NULL
){{keyed}};
`,
	// Automation (automation.go): HQ's rules (the JSON of
	// automation.Rule, webhook secret included: never shown back), and
	// the jobs they scheduled, one per (rule, event): the durable
	// schedule. A replica claims due jobs with a lease (lease_owner,
	// lease_until) so several replicas never send one job at once; a job
	// whose replica died is claimed again once its lease ends.
	`
CREATE TABLE automation_rules (
	id         {{key}} NOT NULL PRIMARY KEY,
	body       TEXT NOT NULL,
	updated_ms BIGINT NOT NULL
){{keyed}};

CREATE TABLE automation_jobs (
	id           {{key}} NOT NULL PRIMARY KEY,
	rule         {{key}} NOT NULL,
	trigger_name TEXT NOT NULL,
	customer     {{key}} NOT NULL,
	event        TEXT NOT NULL,
	due_ms       BIGINT NOT NULL,
	state        {{key}} NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	lease_owner  TEXT NOT NULL DEFAULT '',
	lease_until  BIGINT NOT NULL DEFAULT 0,
	reason       TEXT NOT NULL DEFAULT '',
	created_ms   BIGINT NOT NULL,
	updated_ms   BIGINT NOT NULL,
	done_ms      BIGINT NOT NULL DEFAULT 0,
	latency_ms   BIGINT NOT NULL DEFAULT 0,
	cap_ms       BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX automation_jobs_due ON automation_jobs (state, due_ms);
CREATE INDEX automation_jobs_sent ON automation_jobs (rule, customer, done_ms);
CREATE INDEX automation_jobs_by_update ON automation_jobs (updated_ms);
`,
	// Fitting-room help requests (assist events, apply_assists.go): what
	// the automation's fitting_room_unanswered trigger reads. notified_ms
	// is set once the request was handed to the automation; answered_ms
	// once staff answered it (0: not yet).
	`
CREATE TABLE assist_requests (
	event_id    {{key}} NOT NULL PRIMARY KEY,
	store       {{key}} NOT NULL,
	device      {{key}} NOT NULL,
	zone        TEXT NOT NULL,
	sku         TEXT NOT NULL,
	from_sku    TEXT NOT NULL,
	at_ms       BIGINT NOT NULL,
	notified_ms BIGINT NOT NULL DEFAULT 0,
	answered_ms BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX assist_requests_new ON assist_requests (notified_ms, at_ms);
`,
	// Customers (customers.go): the identity graph's evidence and state,
	// profiles, consent, purchases and erasures. Identifiers appear only
	// as keyed digests ("v1:<hex>", package pii); raw values and profile
	// values only sealed (AES-256-GCM, key id in the value).
	`
-- One row per identifier: its sealed raw value, its customer (master id,
-- '' when no live observation names it), the observation that joined it
-- and its cluster's label (identity.Move).
CREATE TABLE cust_identifiers (
	digest    {{key}} NOT NULL PRIMARY KEY,
	type      TEXT NOT NULL,
	value_enc {{blob}} NOT NULL,
	customer  {{key}} NOT NULL DEFAULT '',
	via       {{key}} NOT NULL DEFAULT '',
	cluster   {{key}} NOT NULL DEFAULT ''
){{keyed}};
CREATE INDEX cust_identifiers_by_customer ON cust_identifiers (customer);
CREATE INDEX cust_identifiers_by_cluster ON cust_identifiers (cluster);

-- Observations: identifiers seen together by one event, with evidence
-- (the stores an identifier was seen at are its observations' stores:
-- the customer card's gate).
-- ids lists "type=digest" in canonical order; forgotten rows (erasure)
-- keep only their id and evidence.
CREATE TABLE cust_observations (
	event_id  {{key}} NOT NULL PRIMARY KEY,
	hlc       BIGINT NOT NULL,
	ids       TEXT NOT NULL,
	store     TEXT NOT NULL DEFAULT '',
	device    TEXT NOT NULL DEFAULT '',
	rule      TEXT NOT NULL DEFAULT '',
	operator  TEXT NOT NULL DEFAULT '',
	forgotten INTEGER NOT NULL DEFAULT 0
){{keyed}};

CREATE TABLE cust_postings (
	digest   {{key}} NOT NULL,
	event_id {{key}} NOT NULL,
	PRIMARY KEY (digest, event_id)
){{keyed}};

-- HQ's unmerges (identity.Unlink), by their own id.
CREATE TABLE cust_unlinks (
	id          {{key}} NOT NULL PRIMARY KEY,
	observation {{key}} NOT NULL,
	hlc         BIGINT NOT NULL,
	operator    TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	restore     INTEGER NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX cust_unlinks_by_observation ON cust_unlinks (observation);

-- Master ids: each resolves to the customer its anchor belongs to.
CREATE TABLE cust_masters (
	id          {{key}} NOT NULL PRIMARY KEY,
	anchor      {{key}} NOT NULL,
	founded_hlc BIGINT NOT NULL,
	founded_id  {{key}} NOT NULL
){{keyed}};
CREATE INDEX cust_masters_by_anchor ON cust_masters (anchor);

-- Profile attributes per subject identifier (profiles.Value).
CREATE TABLE cust_profile (
	subject   {{key}} NOT NULL,
	field     {{key}} NOT NULL,
	value_enc {{blob}},
	cleared   INTEGER NOT NULL DEFAULT 0,
	hlc       BIGINT NOT NULL,
	event_id  {{key}} NOT NULL,
	PRIMARY KEY (subject, field)
){{keyed}};

-- Consent decisions kept per subject identifier (consent.State): per
-- purpose the newest opt-out (slot 'optout') and grant per channel
-- (slot 'grant:<channel>').
CREATE TABLE cust_consent (
	subject  {{key}} NOT NULL,
	purpose  {{key}} NOT NULL,
	slot     {{key}} NOT NULL,
	decision TEXT NOT NULL,
	PRIMARY KEY (subject, purpose, slot)
){{keyed}};

-- Sales and returns attributed to a subject identifier.
CREATE TABLE cust_purchases (
	event_id {{key}} NOT NULL PRIMARY KEY,
	subject  {{key}} NOT NULL,
	kind     TEXT NOT NULL,
	store    TEXT NOT NULL,
	location TEXT NOT NULL,
	channel  TEXT NOT NULL DEFAULT '',
	order_id TEXT NOT NULL DEFAULT '',
	hlc      BIGINT NOT NULL,
	amount   BIGINT NOT NULL DEFAULT 0,
	items    BIGINT NOT NULL DEFAULT 0,
	lines    TEXT NOT NULL
){{keyed}};
CREATE INDEX cust_purchases_by_subject ON cust_purchases (subject, hlc);

-- Erasures: what is kept of an erased person (erasure.Tombstone) and each
-- store's receipt. The sealed raw identifiers stay only until every store
-- has answered, so offline stores can still scrub their outboxes.
CREATE TABLE cust_tombstones (
	digest   {{key}} NOT NULL PRIMARY KEY,
	erasure  {{key}} NOT NULL,
	hlc      BIGINT NOT NULL,
	event_id {{key}} NOT NULL
){{keyed}};

CREATE TABLE cust_erasures (
	id           {{key}} NOT NULL PRIMARY KEY,
	customer     {{key}} NOT NULL,
	operator     TEXT NOT NULL,
	reason       TEXT NOT NULL DEFAULT '',
	hlc          BIGINT NOT NULL,
	requested_ms BIGINT NOT NULL,
	salt         TEXT NOT NULL,
	done_ms      BIGINT NOT NULL DEFAULT 0
){{keyed}};

CREATE TABLE cust_erasure_identifiers (
	erasure   {{key}} NOT NULL,
	digest    {{key}} NOT NULL,
	type      TEXT NOT NULL,
	value_enc {{blob}} NOT NULL,
	seen_by   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (erasure, digest)
){{keyed}};

CREATE TABLE cust_erasure_stores (
	erasure  {{key}} NOT NULL,
	store    {{key}} NOT NULL,
	since_ms BIGINT NOT NULL,
	done_ms  BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (erasure, store)
){{keyed}};
CREATE INDEX cust_erasure_stores_pending ON cust_erasure_stores (store, done_ms);
`,
	// Fitting rooms: visits and what was tried in them, baskets, the
	// products that go together (co-occurrence, package cooccur), the
	// version of each product's down-sync complements, and shoppers'
	// requests for staff. No personal data: a visit is a room and a time.
	`
CREATE TABLE fitting_visits (
	store      {{key}} NOT NULL,
	visit      {{key}} NOT NULL,
	zone       TEXT NOT NULL,
	day        TEXT NOT NULL,
	started_ms BIGINT NOT NULL,
	PRIMARY KEY (store, visit)
){{keyed}};
CREATE INDEX fitting_visits_by_day ON fitting_visits (day, store);

CREATE TABLE fitting_tries (
	store      {{key}} NOT NULL,
	visit      {{key}} NOT NULL,
	product_id {{key}} NOT NULL,
	sku        TEXT NOT NULL,
	zone       TEXT NOT NULL,
	day        TEXT NOT NULL,
	at_ms      BIGINT NOT NULL,
	PRIMARY KEY (store, visit, product_id)
){{keyed}};
CREATE INDEX fitting_tries_by_day ON fitting_tries (day, store, product_id);

CREATE TABLE basket_items (
	event_id   {{key}} NOT NULL,
	product_id {{key}} NOT NULL,
	store      {{key}} NOT NULL,
	day        TEXT NOT NULL,
	at_ms      BIGINT NOT NULL,
	qty        BIGINT NOT NULL,
	PRIMARY KEY (event_id, product_id)
){{keyed}};
CREATE INDEX basket_items_by_day ON basket_items (day, store, product_id);

-- a < b; tried and bought count the sessions holding both.
CREATE TABLE product_pairs (
	a      {{key}} NOT NULL,
	b      {{key}} NOT NULL,
	tried  BIGINT NOT NULL DEFAULT 0,
	bought BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (a, b)
){{keyed}};
CREATE INDEX product_pairs_by_b ON product_pairs (b, a);

CREATE TABLE product_recs (
	product_id {{key}} NOT NULL PRIMARY KEY,
	version    BIGINT NOT NULL DEFAULT 0,
	updated_ms BIGINT NOT NULL DEFAULT 0
){{keyed}};
CREATE INDEX product_recs_by_updated ON product_recs (updated_ms);

-- assist_requests (made with the automation's tables) gains what the
-- try-on analytics read: the request's reason, the staff queue's request
-- id, whether it is the store's escalation, how long it waited, its day.
ALTER TABLE assist_requests ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE assist_requests ADD COLUMN request TEXT NOT NULL DEFAULT '';
ALTER TABLE assist_requests ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assist_requests ADD COLUMN waited_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assist_requests ADD COLUMN day TEXT NOT NULL DEFAULT '';
CREATE INDEX assist_requests_by_day ON assist_requests (day, store);
`,
	// The stores' customer protocol (custsync) reads an erasure's
	// tombstones by erasure.
	`
CREATE INDEX cust_tombstones_by_erasure ON cust_tombstones (erasure, digest);
`,
	// The console's catalog search: one row per (term, SKU), terms as
	// catalog.SearchTerms makes them, kept by catalog imports in their
	// transaction (search.go); a catalog imported before this migration
	// is indexed when the store opens.
	`
CREATE TABLE catalog_search (
	term {{key}} NOT NULL,
	sku  {{key}} NOT NULL,
	PRIMARY KEY (term, sku)
){{keyed}};
CREATE INDEX catalog_search_by_sku ON catalog_search (sku);
`,
	// The purchase feed (purchase_feed.go): a commit-ordered log of
	// purchases by master id that the customer analytics follow, and each
	// purchase's attribution as the log last gave it. Purchases recorded
	// before it enter the log in stamp order.
	`
CREATE TABLE cust_feed_head (
	id  INTEGER NOT NULL PRIMARY KEY,
	pos BIGINT NOT NULL
);
CREATE TABLE cust_feed (
	pos      BIGINT NOT NULL PRIMARY KEY,
	op       TEXT NOT NULL,
	customer {{key}} NOT NULL,
	event_id {{key}} NOT NULL DEFAULT '',
	hlc      BIGINT NOT NULL DEFAULT 0,
	amount   BIGINT NOT NULL DEFAULT 0,
	store    TEXT NOT NULL DEFAULT '',
	channel  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cust_feed_by_event ON cust_feed (event_id);
CREATE TABLE cust_feed_attr (
	event_id {{key}} NOT NULL PRIMARY KEY,
	subject  {{key}} NOT NULL,
	customer {{key}} NOT NULL,
	kind     TEXT NOT NULL,
	hlc      BIGINT NOT NULL,
	amount   BIGINT NOT NULL,
	store    TEXT NOT NULL,
	channel  TEXT NOT NULL
){{keyed}};
CREATE INDEX cust_feed_attr_by_subject ON cust_feed_attr (subject);
CREATE INDEX cust_feed_attr_by_customer ON cust_feed_attr (customer);
INSERT INTO cust_feed_attr (event_id, subject, customer, kind, hlc, amount, store, channel)
SELECT p.event_id, p.subject, i.customer, p.kind, p.hlc, p.amount, p.store, p.channel
FROM cust_purchases p JOIN cust_identifiers i ON i.digest = p.subject WHERE i.customer <> '';
INSERT INTO cust_feed (pos, op, customer, event_id, hlc, amount, store, channel)
SELECT ROW_NUMBER() OVER (ORDER BY hlc, event_id), kind, customer, event_id, hlc, amount, store, channel FROM cust_feed_attr;
INSERT INTO cust_feed_head (id, pos) SELECT 1, COUNT(*) FROM cust_feed;
`,
	// Acting on conflicts and pairing transfers: what closed a conflict
	// (resolved_by) and its version (bumped at every change, so an
	// operator acts on the conflict she saw); the HQ actions taken on
	// conflicts, one per conflict, whose row id is the epoch of the
	// events the hub writes for them (so writing them twice is
	// deduplicated like any device's); dismissed cart checkout
	// conflicts; transfers paired by transfer_id, with their events kept
	// so that a transfer is folded again from all of them.
	`
ALTER TABLE conflicts ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE conflicts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE TABLE conflict_actions (
	id          {{id}},
	conflict_id BIGINT NOT NULL,
	action_id   {{key}} NOT NULL,
	action      TEXT NOT NULL,
	detail      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	at_ms       BIGINT NOT NULL
);
CREATE UNIQUE INDEX conflict_actions_one ON conflict_actions (conflict_id);
CREATE UNIQUE INDEX conflict_actions_by_action ON conflict_actions (action_id);
CREATE TABLE cart_conflict_dismissals (
	cart_id {{key}} NOT NULL PRIMARY KEY,
	actor   TEXT NOT NULL,
	at_ms   BIGINT NOT NULL
){{keyed}};
CREATE TABLE transfer_events (
	transfer_id {{key}} NOT NULL,
	event_id    {{key}} NOT NULL,
	kind        TEXT NOT NULL,
	location    TEXT NOT NULL,
	counterpart TEXT NOT NULL,
	lines       TEXT NOT NULL,
	at_ms       BIGINT NOT NULL,
	PRIMARY KEY (transfer_id, event_id)
){{keyed}};
CREATE TABLE transfers (
	transfer_id {{key}} NOT NULL PRIMARY KEY,
	source      {{key}} NOT NULL,
	destination {{key}} NOT NULL,
	state       TEXT NOT NULL,
	shipped     BIGINT NOT NULL,
	received    BIGINT NOT NULL,
	shipped_ms  BIGINT NOT NULL,
	received_ms BIGINT NOT NULL,
	updated_ms  BIGINT NOT NULL
){{keyed}};
CREATE INDEX transfers_by_state ON transfers (state, shipped_ms);
CREATE TABLE transfer_lines (
	transfer_id {{key}} NOT NULL,
	sku         {{key}} NOT NULL,
	destination {{key}} NOT NULL,
	shipped     BIGINT NOT NULL,
	received    BIGINT NOT NULL,
	in_transit  BIGINT NOT NULL,
	PRIMARY KEY (transfer_id, sku)
){{keyed}};
CREATE INDEX transfer_lines_in_transit ON transfer_lines (sku, destination) WHERE in_transit > 0;
`,
	// Survey comments are personal data: sealed with the customer keys
	// (comment_enc for moderators, redacted_enc for everyone else;
	// surveys.go), comment and redacted left empty. has_comment replaces
	// "comment <> ''" in the merge; comment_erased is set when the
	// respondent's customer was erased, so no comment comes back. Rows
	// written before keep their text until the hub seals them at start
	// (SealInClear).
	`
ALTER TABLE survey_answers ADD COLUMN has_comment INTEGER NOT NULL DEFAULT 0;
ALTER TABLE survey_answers ADD COLUMN comment_erased INTEGER NOT NULL DEFAULT 0;
ALTER TABLE survey_answers ADD COLUMN comment_enc {{blob}};
ALTER TABLE survey_answers ADD COLUMN redacted_enc {{blob}};
UPDATE survey_answers SET has_comment = 1 WHERE comment <> '';
`,
	// Webhook signing secrets are sealed with the customer keys
	// (automation.go), out of the rule's JSON; rules an older hub stored
	// keep theirs in the JSON until the hub seals them at start.
	`
ALTER TABLE automation_rules ADD COLUMN secret_enc {{blob}};
`,
	// Where stores offer a survey (downsync.OfferPostPurchase,
	// OfferFittingRoom; empty: not at stores): published to the stores
	// with its definition.
	`
ALTER TABLE surveys ADD COLUMN offer TEXT NOT NULL DEFAULT '';
`,
	// The exception queue (apply_exceptions.go, package exceptions):
	// inventory events naming an unknown SKU, GTIN or location are held
	// instead of applied, until HQ maps the value and replays them, or
	// discards them. Dead letters learn when they were replayed.
	`
-- One row per (reason, value, store): first and last seen, how many events
-- named it. state is open while events are held for it, else resolved or
-- discarded (note: why).
CREATE TABLE exceptions (
	id       {{id}},
	reason   TEXT NOT NULL,
	value    {{key}} NOT NULL,
	store    {{key}} NOT NULL,
	first_ms BIGINT NOT NULL,
	last_ms  BIGINT NOT NULL,
	count    BIGINT NOT NULL DEFAULT 0,
	state    TEXT NOT NULL DEFAULT 'open',
	note     TEXT NOT NULL DEFAULT '',
	done_by  TEXT NOT NULL DEFAULT '',
	done_ms  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX exceptions_by_value ON exceptions (reason, value, store);
CREATE INDEX exceptions_by_state ON exceptions (state, id);

-- The held events, verbatim, each under the exception of its first unknown
-- value. state: held, replayed (applied by a replay) or discarded.
CREATE TABLE exception_events (
	id           {{id}},
	exception_id BIGINT NOT NULL,
	event_id     TEXT NOT NULL,
	store        {{key}} NOT NULL,
	device       TEXT NOT NULL DEFAULT '',
	epoch        BIGINT NOT NULL DEFAULT 0,
	seq          BIGINT NOT NULL DEFAULT 0,
	kind         TEXT NOT NULL,
	subject      TEXT NOT NULL DEFAULT '',
	reasons      TEXT NOT NULL DEFAULT '',
	payload      {{blob}},
	at_ms        BIGINT NOT NULL,
	state        TEXT NOT NULL DEFAULT 'held',
	done_by      TEXT NOT NULL DEFAULT '',
	done_ms      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX exception_events_by_exception ON exception_events (exception_id, state, id);

-- HQ's mappings: from, wherever an event names it as a kind (sku or
-- location), is to.
CREATE TABLE exception_mappings (
	kind       TEXT NOT NULL,
	from_value {{key}} NOT NULL,
	to_value   {{key}} NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_ms BIGINT NOT NULL,
	PRIMARY KEY (kind, from_value)
);

ALTER TABLE dead_letters ADD COLUMN replayed_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN replayed_by TEXT NOT NULL DEFAULT '';
`,
	// Counts: how each position's latest count was taken (stock
	// confidence), and one variance record per count line that set a
	// position: what the books expected at the count's snapshot, what was
	// counted, and what the difference is worth at the catalog price
	// (minor units of currency; 0 and '' when the SKU has no price).
	// snapshot_hlc is the
	// count's place in the ledger (its snapshot), at_ms when the hub
	// applied it.
	`
ALTER TABLE stock ADD COLUMN count_method TEXT NOT NULL DEFAULT '';
CREATE TABLE count_variances (
	id           {{serial}},
	event_id     {{key}} NOT NULL,
	line_no      INTEGER NOT NULL,
	sku          {{key}} NOT NULL,
	location     {{key}} NOT NULL,
	store        {{key}} NOT NULL,
	device       {{key}} NOT NULL,
	method       TEXT NOT NULL,
	snapshot_hlc BIGINT NOT NULL,
	expected     BIGINT NOT NULL,
	counted      BIGINT NOT NULL,
	variance     BIGINT NOT NULL,
	unit_price   BIGINT NOT NULL,
	currency     TEXT NOT NULL,
	value        BIGINT NOT NULL,
	at_ms        BIGINT NOT NULL
);
CREATE INDEX count_variances_by_time ON count_variances (snapshot_hlc);
CREATE INDEX count_variances_by_location ON count_variances (location, snapshot_hlc);

-- Sales a device holds that the hub has not confirmed: how many, their
-- value (minor units) and the oldest one's age, as of the heartbeat.
ALTER TABLE device_heartbeats ADD COLUMN unsynced_sales BIGINT NOT NULL DEFAULT 0;
ALTER TABLE device_heartbeats ADD COLUMN unsynced_value BIGINT NOT NULL DEFAULT 0;
ALTER TABLE device_heartbeats ADD COLUMN oldest_unsynced_ms BIGINT NOT NULL DEFAULT 0;

-- Each store's sync lag over time, for the console's charts: per five
-- minutes (slot = unix ms / 300,000), the largest age of a device's
-- oldest unconfirmed event heartbeats reported. Kept LagHistoryKeep.
CREATE TABLE lag_history (
	store  {{key}} NOT NULL,
	slot   BIGINT NOT NULL,
	lag_ms BIGINT NOT NULL,
	PRIMARY KEY (store, slot)
){{keyed}};
CREATE INDEX lag_history_by_slot ON lag_history (slot);
`,
	// Refused messages that may carry personal data are kept sealed with
	// the customer keys (payload_seal.go): payload is left empty.
	`
ALTER TABLE dead_letters ADD COLUMN payload_enc {{blob}};
ALTER TABLE exception_events ADD COLUMN payload_enc {{blob}};
`,
	// The events stream's copies of messages naming a customer
	// (stream_erase.go): each observation's stream message, and the
	// messages an erasure must delete from the stream, worked by the hub's
	// stream eraser under a lease.
	`
ALTER TABLE cust_observations ADD COLUMN stream_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE stream_deletions (
	erasure     {{key}} NOT NULL,
	seq         BIGINT NOT NULL,
	event_id    {{key}} NOT NULL,
	queued_ms   BIGINT NOT NULL,
	lease_owner {{key}} NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	attempts    BIGINT NOT NULL DEFAULT 0,
	done_ms     BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (erasure, seq)
){{keyed}};
CREATE INDEX stream_deletions_due ON stream_deletions (done_ms, lease_until);
`,
	// Room in the carts' pages for the new versions of their rows: every
	// cart edit rewrites its carts row and a cart_lines row, and with full
	// pages the line's update could not stay HOT (a cart API batch spent
	// twice the server CPU on its cart_lines upsert). Pages written from
	// now on keep the room; SQLite has no such setting.
	`
{{pg_only}}ALTER TABLE carts SET (fillfactor = 70);
{{pg_only}}ALTER TABLE cart_lines SET (fillfactor = 70);
-- The abandoned-cart sweep's index leaves out the edit clock: an index on
-- updated_wall made every cart edit a non-HOT update, writing all three
-- of the carts' indexes. The sweep reads the open carts of known
-- customers not yet found abandoned (those edited within the idle time,
-- and those it has yet to mark) and sorts them by updated_wall.
DROP INDEX carts_idle;
CREATE INDEX carts_open_claimed ON carts (cart_id) WHERE checkouts = 0 AND customer <> '' AND abandoned_ms = 0;
`,
	// "Bought together" is folded out of the apply path (baskets.go): the
	// ledger stamps each batch's lines with the batch's transaction
	// (xact: PostgreSQL's transaction id, SQLite's basket_fold.next_xact),
	// and the basket folder counts the pairs of the sales of finished
	// transactions past its watermark (folded). Lines written before this
	// keep xact 0, below the first watermark: their baskets were counted
	// when they were applied (basket_items), so they are never folded
	// again. The index holds only the stamped sale lines.
	`
ALTER TABLE stock_ledger ADD COLUMN xact BIGINT NOT NULL DEFAULT 0;
CREATE INDEX stock_ledger_sales_by_xact ON stock_ledger (xact) WHERE kind = 'sale' AND xact > 0;
CREATE TABLE basket_fold (
	id        INTEGER NOT NULL PRIMARY KEY,
	folded    BIGINT NOT NULL,
	next_xact BIGINT NOT NULL,
	folded_ms BIGINT NOT NULL DEFAULT 0
);
INSERT INTO basket_fold (id, folded, next_xact) VALUES (1, 1, 1);
`,
	// Observations carry their cluster (customers.go, "Where the graph's
	// observations are found"), and a customer's identifiers are read
	// through its cluster too: a batch loads a cluster's observations by
	// its label, and postings are kept only for the observations HQ
	// unmerged, which may name identifiers of several clusters. A new
	// shopper's observation so costs one index entry in time order (its
	// label is its own event id) instead of one random entry per
	// identifier. A live observation's identifiers share one label; a
	// dead one's may not, and any of them will do.
	`
ALTER TABLE cust_observations ADD COLUMN cluster {{key}} NOT NULL DEFAULT '';
UPDATE cust_observations SET cluster = COALESCE((SELECT MIN(i.cluster) FROM cust_postings p JOIN cust_identifiers i ON i.digest = p.digest
WHERE p.event_id = cust_observations.event_id AND i.cluster <> ''), '') WHERE forgotten = 0;
CREATE INDEX cust_observations_by_cluster ON cust_observations (cluster);
DELETE FROM cust_postings WHERE event_id NOT IN (SELECT observation FROM cust_unlinks);
-- A customer's identifiers are read through its anchor's cluster
-- (customerIdentifiers): a master id is random, and its index cost every
-- new shopper a random entry.
DROP INDEX cust_identifiers_by_customer;

-- The digests of the identifier rows each batch added (their first 8
-- bytes, concatenated), by generation: what keeps every replica's filter
-- of the digests the hub holds right (customer_digests.go).
CREATE TABLE cust_digest_log (
	gen     BIGINT NOT NULL PRIMARY KEY,
	at_ms   BIGINT NOT NULL,
	digests {{blob}} NOT NULL
);
`,
	// New customers get time-ordered master ids (identity.Policy's
	// MasterID: the founding observation's clock first), so the master
	// ids' primary key grows at its end instead of taking a random entry
	// per new shopper; ordered_since is the first stamp after every
	// observation the hub holds, so the customers founded before keep
	// their ids (they are public) when their clusters are replayed. An
	// erasure finds the master ids anchored on an identifier from the
	// observations naming it (mastersAnchoredOn): the index of anchors,
	// another random entry per new shopper, goes.
	`
CREATE TABLE cust_master_ids (
	id            INTEGER NOT NULL PRIMARY KEY,
	ordered_since BIGINT NOT NULL
);
INSERT INTO cust_master_ids (id, ordered_since) SELECT 1, COALESCE(MAX(hlc), 0) + 1 FROM cust_observations;
DROP INDEX cust_masters_by_anchor;
`,
	// The down-sync sweep (ChangedStock) finds the positions changed in
	// its lookback through the minute of their change: an index on
	// updated_ms itself would cost every stock update an index write
	// (PostgreSQL could no longer keep it HOT), while the minute changes
	// at most once a minute for a busy position and the index stays
	// untouched between. Without it every sweep read all of stock, once
	// per page.
	`
ALTER TABLE stock ADD COLUMN changed_min BIGINT GENERATED ALWAYS AS (updated_ms / 60000) {{generated}};
CREATE INDEX stock_by_changed_min ON stock (changed_min);
`,
	// Master ids whose founding observation an erasure forgot while
	// their anchor (another customer's identifier) stayed: the only ones
	// mastersAnchoredOn cannot derive from the observations naming an
	// identifier, now that cust_masters has no index of anchors. Rare,
	// written by erasures only. The masters of observations forgotten
	// before this release are found here too.
	`
CREATE TABLE cust_orphan_masters (
	anchor {{key}} NOT NULL,
	id     {{key}} NOT NULL,
	PRIMARY KEY (anchor, id)
){{keyed}};
INSERT INTO cust_orphan_masters (anchor, id)
SELECT m.anchor, m.id FROM cust_masters m JOIN cust_observations o ON o.event_id = m.founded_id WHERE o.forgotten = 1;
`,
	// The basket folder finds new sales in an inbox (basket_inbox.go):
	// one row per batch with sales, holding its sale lines, which the
	// folder deletes as it folds them. The index of stamped sale lines
	// it read before cost the ledger an entry per sale line. The lines
	// stamped at or above the watermark (not folded yet) are carried over
	// to basket_backlog here, while the ledger is locked against writers
	// (a batch of a replica still running the previous release commits
	// before or after the whole migration, never half in it), and from
	// there into the inbox when the store opens (carryBasketBacklog).
	// stock_ledger.xact and basket_fold's folded and next_xact are no
	// longer written: new lines keep xact 0.
	`
{{pg_only}}LOCK TABLE stock_ledger IN SHARE MODE;
CREATE TABLE basket_inbox (
	id    {{serial}},
	lines BIGINT NOT NULL,
	sales {{blob}} NOT NULL
);
-- Out of line, not compressed: written once by a batch and read once by
-- the folder, its varints would cost the batch a compression attempt.
{{pg_only}}ALTER TABLE basket_inbox ALTER COLUMN sales SET STORAGE EXTERNAL;
CREATE TABLE basket_backlog (
	xact   BIGINT NOT NULL,
	pos_id BIGINT NOT NULL,
	hlc    BIGINT NOT NULL,
	ev_hi  BIGINT NOT NULL,
	ev_lo  BIGINT NOT NULL,
	qty    BIGINT NOT NULL,
	store  {{key}} NOT NULL
);
INSERT INTO basket_backlog (xact, pos_id, hlc, ev_hi, ev_lo, qty, store)
SELECT xact, pos_id, hlc, ev_hi, ev_lo, qty, store FROM stock_ledger
WHERE kind = 'sale' AND xact > 0 AND xact >= (SELECT folded FROM basket_fold WHERE id = 1);
DROP INDEX stock_ledger_sales_by_xact;
`,
	// The other down-sync sweeps (products, review summaries, pickup
	// documents, recommendations) read the minute of the change too, as
	// the stock sweep does (changed_min): their indexes on updated_ms
	// made every update of those rows write an index entry (PostgreSQL
	// could never keep one HOT), and review summaries and
	// recommendations change many times a minute while a store syncs.
	// Reservations, summaries and recommendations are updated in place,
	// so PostgreSQL leaves room on their pages for the new versions.
	`
ALTER TABLE products ADD COLUMN changed_min BIGINT GENERATED ALWAYS AS (updated_ms / 60000) {{generated}};
CREATE INDEX products_by_changed_min ON products (changed_min);
DROP INDEX products_by_updated;
ALTER TABLE review_stats ADD COLUMN changed_min BIGINT GENERATED ALWAYS AS (updated_ms / 60000) {{generated}};
CREATE INDEX review_stats_by_changed_min ON review_stats (changed_min);
DROP INDEX review_stats_by_updated;
ALTER TABLE reservations ADD COLUMN changed_min BIGINT GENERATED ALWAYS AS (updated_ms / 60000) {{generated}};
CREATE INDEX reservations_by_changed_min ON reservations (changed_min);
DROP INDEX reservations_by_updated;
ALTER TABLE product_recs ADD COLUMN changed_min BIGINT GENERATED ALWAYS AS (updated_ms / 60000) {{generated}};
CREATE INDEX product_recs_by_changed_min ON product_recs (changed_min);
DROP INDEX product_recs_by_updated;
{{pg_only}}ALTER TABLE reservations SET (fillfactor = 80);
{{pg_only}}ALTER TABLE review_stats SET (fillfactor = 70);
{{pg_only}}ALTER TABLE product_recs SET (fillfactor = 70);
`,
	// On PostgreSQL, identifier rows are found by their digest's bytes
	// (digest_key: "v1:" and 64 hex digits become 33 bytes) instead of
	// its text: each new shopper's identifiers take a random entry in
	// that index, and at millions of identifiers the text key's index
	// (twice the size) no longer stays in the buffer cache; inserting
	// into it was most of an identify batch's database time. digest_key
	// is exact for any text (the keyring's lowercase hex digests take
	// the short form, anything else is kept whole behind a zero byte),
	// and a plain SQL expression, so PostgreSQL inlines it and matches
	// the index. Every lookup of cust_identifiers by digest goes through
	// it (dialect.identKey). SQLite keeps the text key.
	`
{{pg_only}}CREATE FUNCTION digest_key(d TEXT) RETURNS BYTEA LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN length(d) = 67 AND left(d, 3) = 'v1:' THEN '\x01'::bytea || decode(substr(d, 4), 'hex') ELSE '\x00'::bytea || decode(replace(d, '\', '\\'), 'escape') END $$;
{{pg_only}}CREATE UNIQUE INDEX cust_identifiers_key ON cust_identifiers (digest_key(digest));
{{pg_only}}ALTER TABLE cust_identifiers DROP CONSTRAINT cust_identifiers_pkey;
`,
	// SQLite only: the ledger is keyed by the UTC day of each line's
	// stamp first (day, then the key it had), so that a batch's lines,
	// nearly all stamped today, go into one small, recent part of the
	// B-tree. Keyed by position first, a 20,000-event batch wrote into
	// as many positions' parts of the whole history, dirtying a page each
	// that the commit wrote whole into the WAL: at a 10M-event ledger the
	// apply rate fell to 0.4 of an empty ledger's (BenchmarkApplyHistory).
	// day is floor(hlc / one day in packed-HLC units), the day retention
	// rolls the line up into; readers of a position's lines go day by day
	// (ledgerDaysCTE). PostgreSQL keeps its ledger: its writes are pages
	// of a heap, not of a B-tree in key order, and it meets the figure.
	// The lines are copied in the old key's order, unsorted: position
	// after position, each one's lines land at the end of their days'
	// parts, one page a day being filled at a time, where sorting them
	// first would hold the whole ledger in memory (temp_store is MEMORY).
	`
{{sqlite_only}}CREATE TABLE ledger_v5 (
{{sqlite_only}}	day     INTEGER NOT NULL,
{{sqlite_only}}	pos_id  BIGINT NOT NULL,
{{sqlite_only}}	hlc     BIGINT NOT NULL,
{{sqlite_only}}	ev_hi   BIGINT NOT NULL,
{{sqlite_only}}	ev_lo   BIGINT NOT NULL,
{{sqlite_only}}	line_no INTEGER NOT NULL,
{{sqlite_only}}	kind    TEXT NOT NULL,
{{sqlite_only}}	qty     BIGINT NOT NULL,
{{sqlite_only}}	delta   BIGINT NOT NULL,
{{sqlite_only}}	store   {{key}} NOT NULL,
{{sqlite_only}}	xact    BIGINT NOT NULL DEFAULT 0,
{{sqlite_only}}	PRIMARY KEY (day, pos_id, hlc, ev_hi, ev_lo, line_no)
{{sqlite_only}}){{keyed}};
{{sqlite_only}}INSERT INTO ledger_v5 (day, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store, xact)
{{sqlite_only}}SELECT (hlc - ((hlc % 5662310400000) + 5662310400000) % 5662310400000) / 5662310400000, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store, xact
{{sqlite_only}}FROM stock_ledger;
{{sqlite_only}}DROP TABLE stock_ledger;
{{sqlite_only}}ALTER TABLE ledger_v5 RENAME TO stock_ledger;
`,
	// PostgreSQL's ledger keyed by day first too, as SQLite's (the
	// migration before). Keyed by position first, every line of a batch
	// went into its position's part of the whole history's key: at a
	// 10M-event ledger (1.2 GB of key, in shared buffers) the batch's
	// database time per event rose by half and the apply ran at 0.73 of
	// an empty ledger's rate (BenchmarkApplyHistory, with
	// deploy/postgres/hub.conf), where a day-first key took the same
	// inserts as fast as an empty one. Readers go day by day, as on
	// SQLite (ledger_days.go). The lines are copied in the new key's
	// order, so the key is built in order; the ledger is locked against
	// the batches of replicas still running the release before, which
	// commit before or after the whole migration. xact, no longer written
	// since the basket inbox (its unfolded lines were carried over then),
	// is left behind: it made every line 8 bytes longer, as the day does.
	`
{{pg_only}}LOCK TABLE stock_ledger IN ACCESS EXCLUSIVE MODE;
{{pg_only}}CREATE TABLE ledger_v6 (
{{pg_only}}	day     BIGINT NOT NULL,
{{pg_only}}	pos_id  BIGINT NOT NULL,
{{pg_only}}	hlc     BIGINT NOT NULL,
{{pg_only}}	ev_hi   BIGINT NOT NULL,
{{pg_only}}	ev_lo   BIGINT NOT NULL,
{{pg_only}}	line_no INTEGER NOT NULL,
{{pg_only}}	kind    TEXT NOT NULL,
{{pg_only}}	qty     BIGINT NOT NULL,
{{pg_only}}	delta   BIGINT NOT NULL,
{{pg_only}}	store   {{key}} NOT NULL,
{{pg_only}}	PRIMARY KEY (day, pos_id, hlc, ev_hi, ev_lo, line_no)
{{pg_only}});
{{pg_only}}INSERT INTO ledger_v6 (day, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store)
{{pg_only}}SELECT (hlc - ((hlc % 5662310400000) + 5662310400000) % 5662310400000) / 5662310400000, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store
{{pg_only}}FROM stock_ledger ORDER BY 1, 2, 3, 4, 5, 6;
{{pg_only}}DROP TABLE stock_ledger;
{{pg_only}}ALTER TABLE ledger_v6 RENAME TO stock_ledger;
{{pg_only}}ALTER TABLE stock_ledger RENAME CONSTRAINT ledger_v6_pkey TO stock_ledger_pkey;
`,
	// The peripherals of each store device (scanners, RFID readers) as
	// their latest device_status event says (peripherals.go): the state
	// and the stamp of the newest report win (hlc, then event_id), since_hlc
	// is when the current state began, prev_* the state before it and the
	// stamp of its last report, error* the newest error reported. Tiny
	// (a row per peripheral), written only when a status changes.
	`
CREATE TABLE peripherals (
	store      {{key}} NOT NULL,
	device     {{key}} NOT NULL,
	name       {{key}} NOT NULL,
	state      TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT '',
	hlc        BIGINT NOT NULL DEFAULT 0,
	event_id   {{key}} NOT NULL DEFAULT '',
	since_hlc  BIGINT NOT NULL DEFAULT 0,
	prev_state TEXT NOT NULL DEFAULT '',
	prev_hlc   BIGINT NOT NULL DEFAULT 0,
	error      TEXT NOT NULL DEFAULT '',
	error_hlc  BIGINT NOT NULL DEFAULT 0,
	updated_ms BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (store, device, name)
){{keyed}};
`,
	// Closed carts are re-published to the stores from the checkouts of a
	// recent window (ClosedCartsSince): a range read by the time recorded,
	// not a scan of every checkout ever made.
	`
CREATE INDEX cart_checkouts_by_recorded ON cart_checkouts (recorded_ms);
`,
	// Shoppers' interest in items as the web shop reports it (interest.go:
	// an item viewed, a "notify me" asked): per subject identifier (the
	// anchor of the master id named, as consent is kept, so a merge shows
	// it and an unmerge leaves it with its side), SKU and kind, with the
	// time last seen. Personal data: an erasure deletes it, and rows
	// older than the automation's window are deleted as new ones come.
	// The back-in-stock trigger reads it by SKU, and cart lines too, which
	// had no index by SKU: that read scanned every cart line of the chain
	// for each SKU back in stock. The new index costs a cart line's first
	// write one more entry; its later edits (qty) stay HOT.
	`
CREATE TABLE cust_interests (
	subject {{key}} NOT NULL,
	sku     {{key}} NOT NULL,
	kind    {{key}} NOT NULL,
	seen_ms BIGINT NOT NULL,
	PRIMARY KEY (subject, sku, kind)
){{keyed}};
CREATE INDEX cust_interests_by_sku ON cust_interests (sku, seen_ms);
CREATE INDEX cust_interests_by_seen ON cust_interests (seen_ms);
CREATE INDEX cart_lines_by_sku ON cart_lines (sku);
`,
}

// migrateLockKey is the first key of the pg_advisory_lock that serialises
// migrations of concurrent replicas ("omni" in ASCII); the second is the
// hash of the schema they share. Hubs in other schemas of the same
// database (other deployments, parallel tests) migrate without waiting on
// each other: a fresh schema's migrations are hundreds of DDL statements.
// Two replicas that somehow migrate at once (an older release locked one
// key for the whole database) still cannot both apply a migration: each
// runs in a transaction that records its version under a primary key, so
// the second fails and its replica restarts on a migrated schema.
const migrateLockKey = 0x6f6d6e69

// migrate applies the pending migrations. On PostgreSQL it holds a session
// advisory lock on one connection meanwhile, so replicas starting together
// migrate one at a time and the others find nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.d.pg() {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1, hashtext(current_schema()))", int32(migrateLockKey)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer func() {
			// A fresh context: the caller's may be done, and the lock must go.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(uctx, "SELECT pg_advisory_unlock($1, hashtext(current_schema()))", int32(migrateLockKey))
		}()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_ms BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		if err := s.applyMigration(ctx, conn, version, m); err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
	}
	if err := s.backfillSearch(ctx, conn); err != nil {
		return err
	}
	return s.carryBasketBacklog(ctx, conn)
}

func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, version int, m string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = $1", version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range splitStatements(s.d.ddl(m)) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w\n%s", err, stmt)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)", version, s.now().UnixMilli()); err != nil {
		return err
	}
	s.log.Info("store: migrated", "version", version, "dialect", s.d.name)
	return tx.Commit()
}

// splitStatements splits a migration at semicolons ending a line and drops
// comment-only chunks. Migrations keep semicolons out of strings and
// comments.
func splitStatements(m string) []string {
	var out []string
	for _, chunk := range strings.Split(m, ";\n") {
		var lines []string
		for _, l := range strings.Split(chunk, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if stmt := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";")); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}
