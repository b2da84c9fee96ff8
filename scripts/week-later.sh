#!/usr/bin/env bash
# Runs the integration-test binaries again with the clock a week and a day ahead (libfaketime),
# to prove that no test depends on the day it was written: a fixture date that ages out of a
# window fails here first. Needs what the tests need running (DIALTONE_TEST_PG_URL,
# DIALTONE_TEST_MYSQL_URL) and reuses the workspace's test build (scripts/test.sh builds it
# first). Monotonic clocks are left alone: only the wall clock moves.
# Usage: scripts/week-later.sh [OFFSET]   (default +8d)
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
OFFSET=${1:-+8d}
command -v faketime >/dev/null || { echo "week-later: faketime is missing (apt-get install faketime)" >&2; exit 1; }
# The crates whose behaviour depends on the date (directory names under crates/).
DIRS=(cli diagnosis server-state captures sip-events incidents web)
# Of the CLI's tests, those reading fixtures, exports, stores and windows, plus two lab walks;
# the other lab tests build their evidence live (dated by the lab's own clock) and restart
# Kamailio often, which only adds noise under faketime.
CLI_FILTERS=(work:: incident:: capture:: serve:: config:: hardening:: diagnose::healthy diagnose::sweep variants::hep_only)
# One workspace build (the same features as `cargo test --workspace`, so nothing is rebuilt):
# the executable of each crate's tests/it.
plan=$(cargo test --workspace --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["test"\]' | grep '/tests/it/main.rs' |
    sed -n 's/.*"src_path":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p')
failed=()
for d in "${DIRS[@]}"; do
    exe=$(echo "$plan" | grep "/crates/$d/tests/it/main.rs " | tail -1 | cut -d' ' -f2)
    if [[ -z $exe ]]; then
        echo "week-later: no test binary for crates/$d" >&2
        failed+=("$d (not built)")
        continue
    fi
    printf '\n== crates/%s, clock %s: %s\n' "$d" "$OFFSET" "$(FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$OFFSET" date -u)"
    out=$(mktemp)
    filters=()
    [[ $d == cli ]] && filters=("${CLI_FILTERS[@]}")
    if (cd "crates/$d" && FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$OFFSET" "$exe" --test-threads="${TEST_THREADS:-3}" "${filters[@]}" >"$out" 2>&1); then
        grep -E '^test result' "$out"
    else
        # The failures themselves, then the runner's summary.
        grep -E -A 12 "panicked at|^---- " "$out" | grep -v -E '^\s+([0-9]+: |at )' | head -n 80
        tail -n 8 "$out"
        failed+=("$d")
    fi
    rm -f "$out"
done
if [[ ${#failed[@]} -gt 0 ]]; then
    printf 'week-later: failed: %s\n' "${failed[*]}"
    exit 1
fi
echo "week-later: every test binary passed with the clock at $OFFSET"
