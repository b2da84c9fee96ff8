#!/usr/bin/env bash
# kill -9 fault suite: `dialtone incident open/answer/attach` (4 concurrent writers) and
# `dialtone serve` (8 concurrent API writers) killed at random moments, on SQLite and on
# PostgreSQL, TRIALS times each (default 100). Prints per mode: trials, processes killed,
# acknowledged writes (exit 0 / HTTP 2xx), lost acknowledged writes, and trials after which the
# store failed a check (PRAGMA integrity_check, `dialtone audit verify`, an incident without its
# gate answers). Exit 1 when anything was lost or corrupt.
#
# Usage: bench/faults.sh [TRIALS] [MODES...]   (modes: cli-sqlite cli-pg serve-sqlite serve-pg)
# DIALTONE_BIN picks the binary (default: a release build, made here); PostgreSQL comes from
# DIALTONE_TEST_PG_URL or scripts/pg.sh. Everything is on loopback; every wait has a bound.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-100}
shift || true
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(cli-sqlite cli-pg serve-sqlite serve-pg)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
if [ -z "${DIALTONE_BIN:-}" ]; then
  cargo build -q --release -p dialtone
  DIALTONE_BIN=$CARGO_TARGET_DIR/release/dialtone
fi
# A private copy: a build running meanwhile cannot swap the binary under the trials.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$DIALTONE_BIN" "$WORK/dialtone"
for m in "${MODES[@]}"; do
  case $m in *-pg) export DIALTONE_TEST_PG_URL=${DIALTONE_TEST_PG_URL:-$(scripts/pg.sh start)} ;; esac
done
status=0
for m in "${MODES[@]}"; do
  python3 bench/faults.py --bin "$WORK/dialtone" --mode "$m" --trials "$TRIALS" || status=1
done
exit $status
