#!/usr/bin/env bash
# Every test of the project, assuming what they need is installed and running (./run test and
# .ci/run install the packages and start PostgreSQL first, then call this script).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
: "${DIALTONE_TEST_PG_URL:?start PostgreSQL first: export DIALTONE_TEST_PG_URL=\$(scripts/pg.sh start)}"
say() { printf '\n== %s\n' "$*"; }

say "format and lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

say "unit, integration and lab tests"
cargo build --workspace --tests --bins
export DIALTONE_BIN=$CARGO_TARGET_DIR/debug/dialtone
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

say "browser tests (headless chromium)"
(cd e2e && node --test --test-concurrency=1)
