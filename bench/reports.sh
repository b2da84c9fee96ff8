#!/usr/bin/env bash
# bench/reports.sh: times every lead report (`dialtone report NAME --json`, release build, wall
# time of the whole command: start, connect, query, print) over a generated history of
# PG_N incidents on PostgreSQL (1,000,000) and SQLITE_N on SQLite (100,000), unfiltered and
# filtered by agent (the costliest filter). The history comes from
# crates/incidents/test_data/report_history.sql (bulk INSERTs, the reports test's generator).
# Target: every report in 1 s or less. Prints each time (best of RUNS) and the figures.
# Settings: PG_N, SQLITE_N (0 skips SQLite), RUNS (3), PG_URL (default: scripts/pg.sh start), KEEP=1 keeps the
# databases (PostgreSQL: dialtone_bench_reports; SQLite: printed path).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_N=${PG_N:-1000000} SQLITE_N=${SQLITE_N:-100000} RUNS=${RUNS:-3}
BASE_MS=1767571200000
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
WORK=$(mktemp -d /tmp/reports-bench.XXXXXX)
PG_URL=${PG_URL:-$("$ROOT/scripts/pg.sh" start)}
DB=dialtone_bench_reports
cleanup() {
    if [[ ${KEEP:-0} != 1 ]]; then
        psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
for c in sqlite3 psql; do
    command -v "$c" >/dev/null || { echo "bench: $c not found (apt-get install sqlite3 postgresql-client)" >&2; exit 1; }
done
echo "== building the release dialtone binary"
(cd "$ROOT" && cargo build --quiet --release -p dialtone)
DIALTONE=$WORK/dialtone
cp "$CARGO_TARGET_DIR/release/dialtone" "$DIALTONE"
export DIALTONE_LOG=${DIALTONE_LOG:-error}  # no slow-statement warnings between the figures
REPORTS="time-to-resolve time-at-level first-level escalations outcomes automation overrides"

history() { sed -e "s/{N}/$1/g" -e "s/{BASE}/$BASE_MS/g" "$ROOT/crates/incidents/test_data/report_history.sql"; }

now_ms() { date +%s%3N; }

# time_reports URL LABEL [filter args...]
time_reports() {
    local url=$1 label=$2; shift 2
    local worst=0
    for r in $REPORTS; do
        local best=
        for _ in $(seq "$RUNS"); do
            local t0 t1
            t0=$(now_ms)
            "$DIALTONE" --database "$url" report "$r" --json "$@" >"$WORK/out.json"
            t1=$(now_ms)
            local d=$((t1 - t0))
            [[ -z $best || $d -lt $best ]] && best=$d
        done
        (( best > worst )) && worst=$best
        printf '  %-8s %-16s %-18s %5d ms %s\n' "$label" "$r" "${*:-(no filter)}" "$best" \
            "$( (( best <= 1000 )) && echo ok || echo OVER)"
    done
    echo "  $label ${*:-(no filter)}: slowest $worst ms (target 1000 ms)"
}

if (( SQLITE_N > 0 )); then
echo "== SQLite: $SQLITE_N incidents"
SQ=$WORK/reports.sqlite
"$DIALTONE" --database "sqlite://$SQ" report first-level >/dev/null
t0=$(now_ms); history "$SQLITE_N" | sqlite3 "$SQ"; sqlite3 "$SQ" "ANALYZE"; t1=$(now_ms)
echo "  generated in $((t1 - t0)) ms ($(du -h "$SQ" | cut -f1))"
time_reports "sqlite://$SQ" sqlite
time_reports "sqlite://$SQ" sqlite --agent agent3
fi

echo "== PostgreSQL: $PG_N incidents"
psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
PGDB=${PG_URL%/*}/$DB
"$DIALTONE" --database "$PGDB" report first-level >/dev/null
t0=$(now_ms)
{ history "$PG_N"; for t in incidents step_records escalations; do
    echo "SELECT setval(pg_get_serial_sequence('$t', 'id'), (SELECT MAX(id) FROM $t));"; done
  echo "VACUUM ANALYZE;"; } | psql -q -v ON_ERROR_STOP=1 "$PGDB" >/dev/null
t1=$(now_ms)
echo "  generated in $((t1 - t0)) ms"
time_reports "$PGDB" postgres
time_reports "$PGDB" postgres --agent agent3

echo "== figures (PostgreSQL, $PG_N incidents, no filter)"
"$DIALTONE" --database "$PGDB" report all
if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $PGDB${SQ:+ and sqlite://$SQ}"; fi
