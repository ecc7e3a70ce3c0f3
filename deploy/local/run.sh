#!/usr/bin/env bash
# Runs the whole platform on one machine with embedded defaults: a hub with
# embedded NATS JetStream and SQLite, loaded with the sample catalog, three
# stores and the online warehouse, whose agents are fed by a simulated POS. Ctrl-C stops everything; data
# stays in $OMNI_RUN_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-bin}
DATA=${OMNI_RUN_DIR:-omni-data/run}
HUB_HTTP=${OMNI_RUN_HUB_HTTP:-127.0.0.1:8080}
NATS_LISTEN=${OMNI_RUN_NATS_LISTEN:-127.0.0.1:14222}
STORES=${OMNI_RUN_STORES:-3}
RATE=${OMNI_RUN_RATE:-5}
CATALOG=${OMNI_RUN_CATALOG:-$ROOT/cloud/internal/catalog/testdata/sample-catalog.jsonl}
# Fitting rooms per store, each with a mirror, fed by a simulated RFID
# reader (shoppers carrying catalog items in and out).
FITTING_ROOMS=${OMNI_RUN_FITTING_ROOMS:-2}

mkdir -p "$DATA"
# HQ credentials for this local platform, made on the first run and kept
# (readable by you alone) in $DATA/hq-credentials: an admin API token the
# hub is bootstrapped with (omnictl and the curl lines below send it) and
# the admin's dashboard password.
CREDS="$DATA/hq-credentials"
if [ ! -s "$CREDS" ]; then
	random() { head -c 24 /dev/urandom | base64 | tr -d '/+=' ; }
	(umask 077 && printf 'OMNI_TOKEN=omni_%s\nOMNI_ADMIN_PASSWORD=%s\n' "$(random)" "$(random)" >"$CREDS")
fi
# shellcheck disable=SC1090
. "$CREDS"
export OMNI_TOKEN
pids=()
cleanup() {
	local rc=$1
	trap - EXIT INT TERM
	echo
	echo "stopping..."
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	exit "$rc"
}
# Ctrl-C and kill are a normal stop; any other exit keeps its status.
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

# The embedded NATS server lets in only clients with credentials, on
# loopback too: each store gets its own, made once and kept with the data
# (an nkey seed, mode 0600); the hub makes its own on first start.
# The simulated online warehouse is the web channel, whose credentials are
# minted only on purpose (--web-channel).
mint() {
	local store=$1 creds="$DATA/$1.nk"
	shift
	if [ -f "$creds" ] && grep -qF "\"STORE_$store\" {" "$DATA/hub/nats-auth/stores.conf" 2>/dev/null; then
		return
	fi
	rm -f "$creds"
	"$BIN/omni-nats" mint-store --hub-data-dir "$DATA/hub" --out "$creds" "$@" "$store" >/dev/null
}
for i in $(seq 1 "$STORES"); do mint "store-$i"; done
mint online --web-channel

OMNI_BOOTSTRAP_TOKEN="$OMNI_TOKEN" "$BIN/omni-hub" --data-dir "$DATA/hub" --http "$HUB_HTTP" --nats-listen "$NATS_LISTEN" --webhook-hosts 127.0.0.1,localhost --webhook-allow-loopback >"$DATA/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	if curl -fsS "http://$HUB_HTTP/healthz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "${pids[0]}" 2>/dev/null; then
		echo "the hub did not start; its log ($DATA/hub.log) ends with:" >&2
		tail -n 20 "$DATA/hub.log" >&2
		exit 1
	fi
	sleep 0.1
done

# On the hub's first start (it says so in its log) the admin has no
# password: the bootstrap token sets the one kept in $CREDS.
if grep -q 'omni-hub first start' "$DATA/hub.log"; then
	if ! printf '%s\n' "$OMNI_ADMIN_PASSWORD" | "$BIN/omnictl" --hub "http://$HUB_HTTP" users passwd admin --password-stdin >/dev/null; then
		echo "warning: could not set the admin's password; set it with: OMNI_TOKEN=\$OMNI_TOKEN $BIN/omnictl --hub http://$HUB_HTTP users passwd admin" >&2
	fi
fi

# The catalog: validated, then imported in one transaction (an unchanged
# catalog changes nothing on a second run).
if "$BIN/omnictl" --hub "http://$HUB_HTTP" catalog import "$CATALOG" >"$DATA/catalog-import.log" 2>&1; then
	catalog_line=$(grep '^imported ' "$DATA/catalog-import.log" | tail -n 1)
else
	echo "warning: the catalog import failed; the log ($DATA/catalog-import.log) ends with:" >&2
	tail -n 5 "$DATA/catalog-import.log" >&2
	catalog_line="catalog import FAILED (see $DATA/catalog-import.log)"
fi

# The simulated POS sells the catalog's SKUs, so the kiosks show real stock.
# Each store sees the others as nearby; "online" is the web shop's
# warehouse, whose stock every kiosk shows too.
sim_args=(--simulate --simulate-rate "$RATE" --simulate-catalog "$CATALOG")
stores=()
for i in $(seq 1 "$STORES"); do stores+=("store-$i"); done
for i in $(seq 1 "$STORES"); do
	# A single store has no neighbours (grep then finds nothing, which is fine).
	nearby=$(printf '%s\n' "${stores[@]}" | { grep -vx "store-$i" || true; } | paste -sd, -)
	"$BIN/omni-edge" --store "store-$i" --device pos-1 --nats-url "nats://$NATS_LISTEN" --nats-creds "$DATA/store-$i.nk" \
		--data-dir "$DATA/store-$i" --http "127.0.0.1:$((7070 + i))" --nearby "$nearby" \
		"${sim_args[@]}" --simulate-fitting-rooms "$FITTING_ROOMS" >"$DATA/store-$i.log" 2>&1 &
	pids+=($!)
done
"$BIN/omni-edge" --store online --device web-1 --nats-url "nats://$NATS_LISTEN" --nats-creds "$DATA/online.nk" \
	--data-dir "$DATA/online" --http "127.0.0.1:7070" "${sim_args[@]}" >"$DATA/online.log" 2>&1 &
pids+=($!)
sleep 1

# One product of the catalog to try: its first SKU and GTIN.
first=$(head -n 1 "$CATALOG")
sample_sku=$(sed -nE 's/.*"sku" *: *"([^"]+)".*/\1/p' <<<"$first")
sample_gtin=$(sed -nE 's/.*"gtins" *: *\[ *"([0-9]+)".*/\1/p' <<<"$first")
stock_sku=${sample_sku:-SKU-00001}

cat <<TXT

omnisync is running (data and logs in $DATA):

  HQ dashboard        http://$HUB_HTTP/   (log in as admin, password $OMNI_ADMIN_PASSWORD)
  API token           export OMNI_TOKEN=$OMNI_TOKEN   (admin; both kept in $CREDS)
  catalog             $catalog_line
                      curl -H "Authorization: Bearer \$OMNI_TOKEN" http://$HUB_HTTP/v1/catalog
  stores              curl -H "Authorization: Bearer \$OMNI_TOKEN" http://$HUB_HTTP/v1/stores
  one SKU everywhere  curl -H "Authorization: Bearer \$OMNI_TOKEN" http://$HUB_HTTP/v1/inventory/$stock_sku
  low stock           curl -H "Authorization: Bearer \$OMNI_TOKEN" 'http://$HUB_HTTP/v1/inventory?below=5'
  omnictl             OMNI_TOKEN=... $BIN/omnictl stores   (or: $BIN/omnictl login)
  hub metrics         curl -H "Authorization: Bearer \$OMNI_TOKEN" http://$HUB_HTTP/metrics
  NATS                nats://$NATS_LISTEN   (credentials: $DATA/<store>.nk; more stores: bin/omni-nats mint-store --hub-data-dir $DATA/hub STORE)
TXT
if [ -n "$sample_sku" ]; then
	echo "  product page        http://$HUB_HTTP/products/$sample_sku"
	echo "  product (JSON)      curl -H \"Authorization: Bearer \$OMNI_TOKEN\" http://$HUB_HTTP/v1/products/$sample_sku"
fi
if [ -n "$sample_gtin" ]; then
	echo "  Digital Link        http://$HUB_HTTP/01/$sample_gtin   (a shelf tag's QR code; ?linkType=all for the linkset)"
fi
for i in $(seq 1 "$STORES"); do
	echo "  store-$i agent       http://127.0.0.1:$((7070 + i))/v1/status   (POST /v1/events)"
	echo "  store-$i kiosk       http://127.0.0.1:$((7070 + i))/kiosk/p/$sample_gtin"
	if [ "$FITTING_ROOMS" -gt 0 ]; then
		echo "  store-$i mirror      http://127.0.0.1:$((7070 + i))/kiosk/?zone=room-1   (simulated shoppers come and go; tap a size)"
		echo "  store-$i staff       http://127.0.0.1:$((7070 + i))/staff/   (the associates' queue)"
	fi
done
echo "  try-on analytics    http://$HUB_HTTP/fitting"

echo "  online warehouse    http://127.0.0.1:7070/v1/status"
echo
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
echo "a process exited unexpectedly; see the logs in $DATA" >&2
exit 1
