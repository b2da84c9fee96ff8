#!/usr/bin/env bash
# Runs the test binaries again with the clock a week and a day ahead (libfaketime), to prove
# that no test depends on the day it was written: a fixture date that ages out of a window
# fails here first. Needs the tests built (scripts/test.sh builds them) and what they need
# running (DIALTONE_TEST_PG_URL, DIALTONE_TEST_MYSQL_URL). Monotonic clocks are left alone:
# only the wall clock moves. Usage: scripts/week-later.sh [OFFSET]   (default +8d)
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
OFFSET=${1:-+8d}
command -v faketime >/dev/null || { echo "week-later: faketime is missing (apt-get install faketime)" >&2; exit 1; }
# The integration-test binary of each crate whose behaviour depends on the date.
CRATES=(dialtone diagnosis server-state captures sip-events incidents web)
failed=()
for c in "${CRATES[@]}"; do
    exe=$(cargo test -p "$c" --test it --no-run --message-format=json 2>/dev/null |
        grep '"kind":\["test"\]' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
    if [[ -z $exe ]]; then
        echo "week-later: no test binary for $c" >&2
        failed+=("$c (not built)")
        continue
    fi
    dir=crates/$c
    [[ $c == dialtone ]] && dir=crates/cli
    printf '\n== %s, clock %s: %s\n' "$c" "$OFFSET" "$(FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$OFFSET" date -u)"
    if ! (cd "$dir" && FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$OFFSET" "$exe" --test-threads="${TEST_THREADS:-3}" 2>&1 | tail -n 25); then
        failed+=("$c")
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    printf 'week-later: failed: %s\n' "${failed[*]}"
    exit 1
fi
echo "week-later: every test binary passed with the clock at $OFFSET"
