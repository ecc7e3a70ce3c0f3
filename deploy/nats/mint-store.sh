#!/usr/bin/env bash
# Adds a store's NATS user to users.conf (beside omnisync.conf) and prints
# the URL its agents use. The password is random and shown once; users.conf
# keeps only its bcrypt hash when the nats CLI is available to make one.
#
#   deploy/nats/mint-store.sh STORE [HOST:PORT]
#
# Reload the server afterwards (nats-server --signal reload) to admit it.
set -euo pipefail
store=${1:?usage: mint-store.sh STORE [HOST:PORT]}
hostport=${2:-127.0.0.1:4222}
dir=${OMNI_NATS_CONF_DIR:-$(cd "$(dirname "$0")" && pwd)}
if ! [[ $store =~ ^[A-Za-z0-9_-]{1,64}$ ]]; then
	echo "mint-store.sh: store must be 1-64 of letters, digits, '-' and '_'" >&2
	exit 2
fi
conf="$dir/users.conf"
if ! [ -f "$conf" ] || [ "$(tail -n 1 "$conf")" != "]" ]; then
	echo "mint-store.sh: $conf must exist and end with the line ']'" >&2
	exit 1
fi
if grep -q "user: \"store-$store\"" "$conf"; then
	echo "mint-store.sh: store $store already has a user in $conf" >&2
	exit 1
fi
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
stored=$password
if command -v nats >/dev/null 2>&1; then
	stored=$(nats server passwd --pass "$password" 2>/dev/null || echo "$password")
fi
# Reading the down-sync bucket (the catalog, review summaries and stock of
# the chain: nothing private to another store) takes its stream's info and
# ordered consumers of its own on that stream alone; the replies and
# messages come to the store's inbox.
down='"$JS.API.STREAM.INFO.KV_omni_down", "$JS.API.CONSUMER.CREATE.KV_omni_down.>", "$JS.API.CONSUMER.MSG.NEXT.KV_omni_down.>", "$JS.API.CONSUMER.DELETE.KV_omni_down.>"'
# Its pickup orders are private: on the pickup bucket's stream it may only
# create consumers whose subject filter is its own keys (the server checks
# the filter in the request subject against the consumer's configuration),
# then read, inspect and delete them. No stream info (it would list other
# stores' keys), no direct or message gets.
pickup="\"\$JS.API.CONSUMER.CREATE.KV_omni_pickup.*.\$KV.omni_pickup.$store.>\", \"\$JS.API.CONSUMER.MSG.NEXT.KV_omni_pickup.*\", \"\$JS.API.CONSUMER.INFO.KV_omni_pickup.*\", \"\$JS.API.CONSUMER.DELETE.KV_omni_pickup.*\""
# Insert the user before the array's closing bracket, atomically.
tmp=$(mktemp "$conf.XXXXXX")
{
	sed '$d' "$conf"
	cat <<CONF
  # store $store, minted $(date -u +%FT%TZ)
  {
    user: "store-$store"
    password: "$stored"
    permissions: {
      publish: { allow: ["omni.ev.$store.>", "omni.hub.sync.$store.>", $down, $pickup] }
      subscribe: { allow: ["omni.ack.$store.>", "_INBOX.$store.>"] }
    }
  }
]
CONF
} >"$tmp"
chmod 600 "$tmp"
mv "$tmp" "$conf"
echo "nats://store-$store:$password@$hostport"
