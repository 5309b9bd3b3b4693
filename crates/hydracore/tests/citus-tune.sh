#!/usr/bin/env bash
# Tunes a throwaway Citus cluster started by ../shared/tools/citus/cluster.sh
# for the test suite, then restarts its nodes: no syncs; connections to the
# workers kept between transactions; and room for the background workers
# that each test database's maintenance daemon and a rebalance take (the
# default 8 runs out with a few databases at once).
#   citus-tune.sh CITUS_DIR
set -euo pipefail
DIR=${1:?citus-tune.sh CITUS_DIR}
BIN=/usr/lib/postgresql/15/bin
for n in coord w1 w2; do
    port=$(cat "$DIR/$n.port")
    psql -qX -h 127.0.0.1 -p "$port" -U postgres postgres \
        -c "ALTER SYSTEM SET fsync = off" \
        -c "ALTER SYSTEM SET citus.max_cached_conns_per_worker = 8" \
        -c "ALTER SYSTEM SET max_worker_processes = 64" >/dev/null
    su postgres -c "$BIN/pg_ctl -D $DIR/$n -o '-p $port -k $DIR' -l $DIR/$n.log -w restart" >/dev/null
done
