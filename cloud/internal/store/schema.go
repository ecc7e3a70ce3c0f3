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
}

// migrateLockKey is the pg_advisory_lock key that serialises migrations of
// concurrent replicas ("omnisync" in ASCII).
const migrateLockKey = 0x6f6d6e6973796e63

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
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLockKey)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer func() {
			// A fresh context: the caller's may be done, and the lock must go.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(uctx, "SELECT pg_advisory_unlock($1)", int64(migrateLockKey))
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
	return nil
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
