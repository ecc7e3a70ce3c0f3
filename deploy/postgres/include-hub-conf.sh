#!/bin/sh
# The postgres image runs this once, on a fresh data directory, before its
# first real start: from then on the server reads the hub's settings
# (hub.conf, mounted beside it at /etc/postgresql/hub.conf). A data
# directory created before needs the same line added by hand.
set -eu
echo "include '/etc/postgresql/hub.conf'" >>"$PGDATA/postgresql.conf"
