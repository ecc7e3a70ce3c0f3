#!/usr/bin/env bash
# Imports a generated catalog of OMNI_IMPORT_PRODUCTS products (360000: about
# 1.6M variants, 500 MB of JSON Lines) into a fresh hub with `omnictl
# catalog import`, twice (the second import changes nothing), and prints
# the hub's peak memory: VmHWM (peak resident set, file pages such as the
# SQLite mapping included) and the peak anonymous resident set (the Go
# heap, stacks and buffers: what the import itself costs), sampled every
# 100 ms, with the time each import took.
#
# OMNI_IMPORT_DB=postgres://... runs the hub on PostgreSQL (the schema is
# dropped first: use a scratch database); default SQLite in a temporary
# directory. HUB_BIN and OMNICTL_BIN run other builds (default: build this
# tree), so two versions can be compared on one file.
set -euo pipefail
cd "$(dirname "$0")/../.."

PRODUCTS=${OMNI_IMPORT_PRODUCTS:-360000}
DB=${OMNI_IMPORT_DB:-}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

if [ -z "${HUB_BIN:-}" ] || [ -z "${OMNICTL_BIN:-}" ]; then
	echo "building omni-hub and omnictl ..." >&2
	CGO_ENABLED=0 go build -trimpath -o "$work/" ./cloud/cmd/omni-hub ./cloud/cmd/omnictl
fi
HUB_BIN=${HUB_BIN:-$work/omni-hub}
OMNICTL_BIN=${OMNICTL_BIN:-$work/omnictl}
catalog=${OMNI_IMPORT_FILE:-$work/catalog.jsonl}
if [ ! -s "$catalog" ]; then
	echo "generating $PRODUCTS products ..." >&2
	"$OMNICTL_BIN" catalog sample --products "$PRODUCTS" -o "$catalog"
fi
bytes=$(stat -c %s "$catalog")

if [ -n "$DB" ]; then
	psql "$DB" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export OMNI_TOKEN=omni_catalog-import-bench-token-0
OMNI_BOOTSTRAP_TOKEN=$OMNI_TOKEN "$HUB_BIN" --data-dir "$work/hub" --http "127.0.0.1:$port" \
	--nats-listen 127.0.0.1:0 ${DB:+--db "$DB"} >"$work/hub.log" 2>&1 &
hub=$!
for _ in $(seq 1 200); do
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	kill -0 $hub 2>/dev/null || { tail -n 20 "$work/hub.log" >&2; exit 1; }
	sleep 0.1
done

# status FIELD: the hub's /proc status field in kB.
status() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$hub/status"; }
# cpu: the hub's user + system CPU time so far, in seconds.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$hub/stat"; }
# Peaks sampled every 100 ms: anonymous RSS (kB) and the Go heap in use
# (bytes, from the hub's /metrics).
echo 0 >"$work/anon"
echo 0 >"$work/heap"
sample() {
	local pa=0 ph=0 a h
	while kill -0 $hub 2>/dev/null; do
		a=$(status RssAnon || echo 0)
		[ "${a:-0}" -gt "$pa" ] && pa=$a && echo "$pa" >"$work/anon"
		h=$(curl -fsS -H "Authorization: Bearer $OMNI_TOKEN" "http://127.0.0.1:$port/metrics" 2>/dev/null |
			awk '$1 == "go_memstats_heap_inuse_bytes" { printf "%d", $2 }')
		[ "${h:-0}" -gt "$ph" ] && ph=$h && echo "$ph" >"$work/heap"
		sleep 0.1
	done
}
sample &
idle=$(status VmRSS)
for run in first second; do
	start=$(date +%s.%N)
	c0=$(cpu)
	"$OMNICTL_BIN" --hub "http://127.0.0.1:$port" catalog import "$catalog" >"$work/import-$run.log" 2>"$work/import-$run.err" ||
		{ cat "$work/import-$run.log" "$work/import-$run.err" >&2; tail -n 20 "$work/hub.log" >&2; exit 1; }
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	printf '%s import: %.1f s (validation and upload included), hub CPU %.1f s: %s\n' "$run" "$secs" \
		"$(echo "$(cpu) - $c0" | bc)" "$(grep '^imported' "$work/import-$run.log")"
done
grep 'catalog imported' "$work/hub.log" | grep -o 'read_time=[^ ]* .*store_time=[^ ]*' || true
printf 'catalog: %d bytes, %s\n' "$bytes" "$(grep -c '' "$catalog") rows"
printf 'hub RSS: %d MB idle, peak %d MB (VmHWM), peak anonymous %d MB; peak Go heap in use %d MB\n' \
	$((idle / 1024)) $(($(status VmHWM) / 1024)) $(($(cat "$work/anon") / 1024)) $(($(cat "$work/heap") / 1048576))
