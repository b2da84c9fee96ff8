#!/usr/bin/env bash
# Benchmark of the agents' web app: requests/s and p50/p99 latency of the guided step page and of
# an API GET under concurrent agents, on SQLite and on PostgreSQL. Prints the figures.
#
# Usage: bench/web.sh [DURATION_S] [AGENTS]      (defaults: 10 s, 16 concurrent agents)
# Needs: wrk (apt-get install wrk), curl, psql, a release build of the web crate's serve example
# (built here if missing), PostgreSQL from scripts/pg.sh (started here if needed).
# Everything listens on 127.0.0.1 and every load run is bounded by DURATION_S.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
AGENTS=${2:-16}
THREADS=2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
BIN=$CARGO_TARGET_DIR/release/examples/serve
command -v wrk >/dev/null || { echo "bench/web.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
cargo build -q --release -p web --example serve
PG_ADMIN=${DIALTONE_TEST_PG_URL:-$(scripts/pg.sh start)}
WORK=$(mktemp -d)
SERVER_PID=
DB=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$DB" ] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server ARGS... : starts the example, waits for its address (30 s bound), sets BASE.
start_server() {
  "$BIN" --cheap-hashes --user bench:l2:bench-password "$@" >"$WORK/out" 2>"$WORK/err" &
  SERVER_PID=$!
  for _ in $(seq 300); do
    BASE=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/out" || true)
    [ -n "$BASE" ] && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$WORK/err")" >&2; exit 1
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# login: a session cookie and the session's CSRF token; then 50 incidents walked a few steps.
prepare() {
  local jar=$WORK/jar page csrf
  rm -f "$jar"
  page=$(curl -sf -c "$jar" -b "$jar" "$BASE/login")
  csrf=$(grep -o 'name="csrf" value="[0-9a-f]*"' <<<"$page" | head -1 | sed 's/.*value="//; s/"//')
  curl -sf -o /dev/null -c "$jar" -b "$jar" --data-urlencode username=bench \
    --data-urlencode password=bench-password --data-urlencode "csrf=$csrf" "$BASE/login"
  SESSION=$(awk '$6 == "dialtone_session" { print $7 }' "$jar")
  [ -n "$SESSION" ] || { echo "login failed" >&2; exit 1; }
  CSRF=$(curl -sf -b "dialtone_session=$SESSION" "$BASE/incidents/new" \
    | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="//; s/"//')
  for i in $(seq 50); do
    curl -sf -o /dev/null -b "dialtone_session=$SESSION" -H "x-csrf-token: $CSRF" -H 'content-type: application/json' \
      -d "{\"account\":\"bench-$i\",\"reporter\":\"bench\",\"gate\":{\"gate.operational_requirements\":\"no\",\"gate.client_error\":\"none\"}}" \
      "$BASE/api/incidents"
  done
  for step in l1.connection_status=connected l1.force_reconnection=fine; do
    curl -sf -o /dev/null -b "dialtone_session=$SESSION" -H "x-csrf-token: $CSRF" -H 'content-type: application/json' \
      -d "{\"version\":$(curl -sf -b "dialtone_session=$SESSION" "$BASE/api/incidents/25" | grep -o '"version":[0-9]*' | cut -d: -f2),\"step\":\"${step%%=*}\",\"answer\":\"${step#*=}\"}" \
      "$BASE/api/incidents/25/answer"
  done
}

# measure LABEL PATH: wrk for DURATION with AGENTS connections; prints one row.
measure() {
  local label=$1 path=$2 out rps p50 p99 non2xx
  out=$(wrk -t"$THREADS" -c"$AGENTS" -d"${DURATION}s" --timeout 10s --latency \
    -H "Cookie: dialtone_session=$SESSION" "$BASE$path")
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  [ "$label" = "baseline GET /healthz" ] && BASELINE_RPS=$rps
  ratio=$(awk -v a="$rps" -v b="${BASELINE_RPS:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '%-10s %-28s %10s %10s %10s %8s %9s\n' "$BACKEND" "$label" "$rps" "$p50" "$p99" "${non2xx:-0}" "$ratio"
}

printf 'dialtone web benchmark: %s concurrent agents, %s s per run, %s wrk threads, %s CPUs\n' \
  "$AGENTS" "$DURATION" "$THREADS" "$(nproc)"
# The baseline is the same server's cheapest route, /healthz (one store ping, no page): the
# ratio column says what fraction of that throughput each real page or API call keeps.
printf '%-10s %-28s %10s %10s %10s %8s %9s\n' backend request req/s p50 p99 non-2xx vs-base

BACKEND=sqlite
start_server --data-dir "$WORK/data"
prepare
measure "baseline GET /healthz" /healthz
measure "step page GET /incidents/25" /incidents/25
measure "API GET /api/incidents/25" /api/incidents/25
measure "API GET /api/incidents" "/api/incidents?limit=50"
stop_server

BACKEND=postgres
DB=dialtone_bench_$$
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null
start_server --database "${PG_ADMIN%/*}/$DB"
prepare
measure "baseline GET /healthz" /healthz
measure "step page GET /incidents/25" /incidents/25
measure "API GET /api/incidents/25" /api/incidents/25
measure "API GET /api/incidents" "/api/incidents?limit=50"
stop_server
