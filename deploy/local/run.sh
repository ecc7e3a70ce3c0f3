#!/usr/bin/env bash
# Runs the whole platform on one machine with embedded defaults: a hub with
# embedded NATS JetStream and SQLite, and three stores whose agents are fed by
# a simulated POS. Ctrl-C stops everything; data stays in $OMNI_RUN_DIR.
set -euo pipefail

BIN=${BIN:-bin}
DATA=${OMNI_RUN_DIR:-omni-data/run}
HUB_HTTP=${OMNI_RUN_HUB_HTTP:-127.0.0.1:8080}
NATS_LISTEN=${OMNI_RUN_NATS_LISTEN:-127.0.0.1:14222}
STORES=${OMNI_RUN_STORES:-3}
RATE=${OMNI_RUN_RATE:-5}

mkdir -p "$DATA"
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

"$BIN/omni-hub" --data-dir "$DATA/hub" --http "$HUB_HTTP" --nats-listen "$NATS_LISTEN" >"$DATA/hub.log" 2>&1 &
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

for i in $(seq 1 "$STORES"); do
	"$BIN/omni-edge" --store "store-$i" --device pos-1 --nats-url "nats://$NATS_LISTEN" \
		--data-dir "$DATA/store-$i" --http "127.0.0.1:$((7070 + i))" \
		--simulate --simulate-rate "$RATE" >"$DATA/store-$i.log" 2>&1 &
	pids+=($!)
done
sleep 1

cat <<TXT

omnisync is running (data and logs in $DATA):

  HQ dashboard        http://$HUB_HTTP/
  stores              curl http://$HUB_HTTP/v1/stores
  one SKU everywhere  curl http://$HUB_HTTP/v1/inventory/SKU-00001
  low stock           curl 'http://$HUB_HTTP/v1/inventory?below=5'
  hub metrics         http://$HUB_HTTP/metrics
  NATS                nats://$NATS_LISTEN
TXT
for i in $(seq 1 "$STORES"); do
	echo "  store-$i agent       http://127.0.0.1:$((7070 + i))/v1/status   (POST /v1/events)"
done
echo
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
echo "a process exited unexpectedly; see the logs in $DATA" >&2
exit 1
