#!/usr/bin/env bash
# Adds a store's account to stores.conf (beside omnisync.conf) with a
# password user, and prints the URL its agents use: the password is random
# and shown once; stores.conf keeps only its bcrypt hash. Without a tool to
# make the hash (omni-nats, the nats CLI, htpasswd or mkpasswd) it refuses:
# it never writes a password in clear.
#
#   deploy/nats/mint-store.sh [--web-channel] STORE [HOST:PORT]
#
# The web channel's location (online, or OMNI_ONLINE_LOCATION as the hub's
# --online-location) is refused unless --web-channel says it is meant: its
# events may release and fulfil any store's orders, so only the web shop's
# agent may have its credentials; --web-channel mints nothing else.
#
# `omni-nats mint-store --conf-dir DIR STORE` does the same with an nkey
# (the server keeps only a public key; agents get a credentials file
# instead of a password in their URL), and is what we recommend. The block
# written here is the one shared/natsacct.StoreBlock renders.
#
# Reload the server afterwards (nats-server --signal reload) to admit it.
set -euo pipefail
web_channel=0
if [ "${1:-}" = "--web-channel" ]; then
	web_channel=1
	shift
fi
store=${1:?usage: mint-store.sh [--web-channel] STORE [HOST:PORT]}
hostport=${2:-127.0.0.1:4222}
if [[ $hostport == -* ]]; then
	echo "mint-store.sh: $hostport is not HOST:PORT (--web-channel goes first: mint-store.sh --web-channel STORE [HOST:PORT])" >&2
	exit 2
fi
dir=${OMNI_NATS_CONF_DIR:-$(cd "$(dirname "$0")" && pwd)}
if ! [[ $store =~ ^[A-Za-z0-9_-]{1,64}$ ]]; then
	echo "mint-store.sh: store must be 1-64 of letters, digits, '-' and '_'" >&2
	exit 2
fi
if [ "$store" = "_hq" ]; then
	echo "mint-store.sh: _hq is reserved for the events HQ's actions write at the hub" >&2
	exit 2
fi
online=${OMNI_ONLINE_LOCATION:-online}
if [ "$store" = "$online" ] && [ "$web_channel" = 0 ]; then
	echo "mint-store.sh: $store is the web channel's location, whose events may release and fulfil any store's orders; mint it for the web shop's agent alone, with --web-channel" >&2
	exit 2
fi
if [ "$web_channel" = 1 ] && [ "$store" != "$online" ]; then
	echo "mint-store.sh: --web-channel mints the web channel's location $online (OMNI_ONLINE_LOCATION), not $store" >&2
	exit 2
fi
conf="$dir/stores.conf"
if [ -f "$conf" ] && grep -qF "\"STORE_$store\" {" "$conf"; then
	echo "mint-store.sh: store $store already has an account in $conf" >&2
	exit 1
fi
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
hash=
if command -v omni-nats >/dev/null 2>&1; then
	hash=$(printf '%s\n' "$password" | omni-nats passwd 2>/dev/null || true)
elif command -v nats >/dev/null 2>&1; then
	hash=$(nats server passwd --pass "$password" 2>/dev/null || true)
elif command -v htpasswd >/dev/null 2>&1; then
	hash=$(htpasswd -nbBC 11 "" "$password" 2>/dev/null | tr -d ':\n' || true)
elif command -v mkpasswd >/dev/null 2>&1; then
	hash=$(mkpasswd -m bcrypt -R 11 "$password" 2>/dev/null || true)
fi
if ! [[ $hash =~ ^\$2[abxy]?\$[0-9][0-9]\$[./A-Za-z0-9]{53}$ ]]; then
	echo "mint-store.sh: no bcrypt hash could be made (install omni-nats, the nats CLI, htpasswd or mkpasswd); refusing to write the password in clear" >&2
	exit 1
fi
s=$store
reads=("\$JS.API.STREAM.INFO.KV_omni_down" "\$JS.API.CONSUMER.CREATE.KV_omni_down.>" "\$JS.API.CONSUMER.MSG.NEXT.KV_omni_down.*" "\$JS.API.CONSUMER.DELETE.KV_omni_down.*"
	"\$JS.API.CONSUMER.CREATE.KV_omni_pickup.*.\$KV.omni_pickup.$s.>" "\$JS.API.CONSUMER.MSG.NEXT.KV_omni_pickup.*" "\$JS.API.CONSUMER.INFO.KV_omni_pickup.*" "\$JS.API.CONSUMER.DELETE.KV_omni_pickup.*"
	"\$JS.API.CONSUMER.CREATE.KV_omni_erase.*.\$KV.omni_erase.$s.>" "\$JS.API.CONSUMER.MSG.NEXT.KV_omni_erase.*" "\$JS.API.CONSUMER.INFO.KV_omni_erase.*" "\$JS.API.CONSUMER.DELETE.KV_omni_erase.*")
# The same reads under the hub's JetStream domain, as agents behind a
# store's leaf node send them (natsacct.domainReads).
domain_reads=("${reads[@]/#\$JS.API./\$JS.hub.API.}")
quoted() { local out= x; for x in "$@"; do out+="${out:+, }\"$x\""; done; printf '%s' "$out"; }
tmp=$(mktemp "$conf.XXXXXX")
chmod 600 "$tmp"
{
	if [ -f "$conf" ]; then cat "$conf"; fi
	echo "  # store $s, minted $(date -u +%FT%TZ)"
	echo "  \"STORE_$s\" {"
	echo "    users: ["
	echo "      {"
	echo "        user: \"store-$s\", password: \"$hash\""
	echo "        permissions: {"
	echo "          publish: { allow: [$(quoted "omni.ev.$s.>" "omni.hub.sync.$s.>" "omni.hub.cust.$s.>" "omni.staff.$s.>" "${reads[@]}" "${domain_reads[@]}")] }"
	echo "          subscribe: { allow: [$(quoted "omni.ack.$s.>" "_INBOX.$s.>" "omni.staff.$s.>")] }"
	echo "        }"
	echo "      }"
	echo "    ]"
	echo "    imports: ["
	echo "      {service: {account: HUB, subject: \"omni.ev.$s.>\"}}"
	echo "      {service: {account: HUB, subject: \"omni.hub.sync.$s.>\"}}"
	echo "      {service: {account: HUB, subject: \"omni.hub.cust.$s.>\"}}"
	echo "      {stream: {account: HUB, subject: \"omni.ack.$s.>\"}}"
	for r in "${reads[@]}"; do echo "      {service: {account: DOWN, subject: \"$r\"}}"; done
	# Keeps the server from answering JetStream calls itself ("not enabled
	# for account"); the user may not publish to it.
	echo "      {service: {account: DOWN, subject: \"\$JS.API.INFO\"}}"
	echo "    ]"
	echo "  }"
} >"$tmp"
mv "$tmp" "$conf"
echo "nats://store-$s:$password@$hostport"
