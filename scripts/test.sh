#!/usr/bin/env bash
# Every test of the project, assuming what they need is installed and running (./run test and
# .ci/run install the packages and start PostgreSQL and MariaDB first, then call this script).
# Every step runs even when an earlier one failed; the script names each failed step at the end
# and exits non-zero if there was one.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
: "${DIALTONE_TEST_PG_URL:?start PostgreSQL first: export DIALTONE_TEST_PG_URL=\$(scripts/pg.sh start)}"
: "${DIALTONE_TEST_MYSQL_URL:?start MariaDB first: export DIALTONE_TEST_MYSQL_URL=\$(scripts/mariadb.sh start)}"
say() { printf '\n== %s\n' "$*"; }
failed=()
step() {
    local name=$1
    shift
    say "$name"
    local t0=$SECONDS
    if "$@"; then
        printf -- '-- %s: ok (%d s)\n' "$name" $((SECONDS - t0))
    else
        printf -- '-- %s: FAILED (exit %d, %d s)\n' "$name" "$?" $((SECONDS - t0))
        failed+=("$name")
    fi
}

step "format" cargo fmt --all --check
step "lint" cargo clippy --workspace --all-targets -- -D warnings
step "build" cargo build --workspace --tests --bins
export DIALTONE_BIN=$CARGO_TARGET_DIR/debug/dialtone
step "unit, integration and lab tests" cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-3}"
# The same integration tests with the wall clock a week and a day ahead: no test may depend on
# the day it was written (a fixture date that ages out of a window fails here first).
step "the tests again, a week later (faketime +8d)" scripts/week-later.sh +8d
browser() { (cd e2e && node --test --test-concurrency=1); }
step "browser tests (headless chromium)" browser

say "summary"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed steps: %s\n' "$(IFS=';'; echo "${failed[*]}")"
    exit 1
fi
echo "every step passed"
