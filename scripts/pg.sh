#!/usr/bin/env bash
# Starts (or reuses) a throw-away PostgreSQL cluster on loopback for the test suite.
# Usage: scripts/pg.sh start|stop|url   (PG_DIR and PG_PORT override the defaults)
set -euo pipefail
PG_DIR=${PG_DIR:-/var/tmp/dialtone-pg}
PG_PORT=${PG_PORT:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
url() { echo "postgres://postgres@127.0.0.1:${PG_PORT}/postgres"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    [ -n "$BIN" ] || { echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
    if ! [ -f "$PG_DIR/PG_VERSION" ]; then
      mkdir -p "$PG_DIR"; [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
      as_pg "$BIN/initdb" -D "$PG_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 30 start \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR -c max_connections=300 -c fsync=off" >/dev/null
    fi
    url ;;
  stop) as_pg "$BIN/pg_ctl" -D "$PG_DIR" -m fast stop >/dev/null 2>&1 || true ;;
  url) url ;;
  *) echo "usage: pg.sh start|stop|url" >&2; exit 2 ;;
esac
