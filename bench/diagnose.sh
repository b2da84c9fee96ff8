#!/usr/bin/env bash
# Benchmark: one full `dialtone diagnose` against the lab, compared with the same checks done one
# after another by hand-made tools (the baseline an engineer would script today):
#   sipsak OPTIONS on UDP and TCP, openssl s_client on TLS, curl JSON-RPC (ul.lookup,
#   dispatcher.list, core.uptime), sqlite3 on the accounting and alias tables, and a SIPp echo call.
# Prints wall times, dialtone's time outside the echo media window, and the ratio.
# Usage: bench/diagnose.sh [ROUNDS]   (needs ./run deps, and a release build: cargo build --release -p dialtone)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
BIN=${DIALTONE_BIN:-${CARGO_TARGET_DIR:-/var/cache/dialtone/target}/release/dialtone}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p dialtone" >&2; exit 1; }
RUN=$(mktemp -d /tmp/dialtone-bench.XXXXXX)
export LAB_SIP_PORT=16060 LAB_TLS_PORT=16061 LAB_RPC_PORT=16071 LAB_ECHO_PORT=16090 LAB_GW_PORT=16092 LAB_GW2_PORT=16094 LAB_MEDIA_BASE=22000
trap 'lab/stop.sh "$RUN" >/dev/null 2>&1 || true; rm -rf "$RUN"' EXIT
for try in 1 2 3; do lab/start.sh "$RUN" >/dev/null && break; [ "$try" = 3 ] && exit 1; sleep 1; done
. "$RUN/lab.env"
scripts/lab-config.sh "$RUN" >"$RUN/dialtone.toml"
sipp_uac() {
  sipp "$LAB_SIP_UDP" -sf "lab/sipp/$1" -t u1 -m 1 -nostdin -timeout 15 -timeout_error -i "$LAB_IP" -mi "$LAB_IP" \
    -key user "$2" -key domain "$LAB_DOMAIN" -key contact "sip:$2@$LAB_IP:5999" -key expires 300 \
    -au "$2" -ap "$3" "${@:4}" >/dev/null 2>&1
}
sipp_uac register.xml alice "$LAB_ACCOUNT_ALICE_PASSWORD"
sipp_uac call.xml alice "$LAB_ACCOUNT_ALICE_PASSWORD" -key target "$LAB_ECHO_NUMBER" -d 500
# A failed call to bob (not registered: 480), so the walk goes through L1 and L2 to an ending.
sipp_uac call.xml alice "$LAB_ACCOUNT_ALICE_PASSWORD" -key target 1002 -d 500 || true
ms() { date +%s%3N; }

baseline_once() {
  sipsak -s "sip:probe@$LAB_IP:$LAB_SIP_PORT" >/dev/null 2>&1 || true
  sipsak -E tcp -s "sip:probe@$LAB_IP:$LAB_SIP_PORT" >/dev/null 2>&1 || true
  timeout 5 openssl s_client -connect "$LAB_IP:$LAB_TLS_PORT" -CAfile "$LAB_CA_CERT" -verify_return_error </dev/null >/dev/null 2>&1 || true
  for m in '"ul.lookup","params":["location","alice"]' '"dispatcher.list"' '"core.uptime"' '"stats.fetch","params":["all"]'; do
    curl -s -m 5 -X POST --data "{\"jsonrpc\":\"2.0\",\"method\":$m,\"id\":1}" "$LAB_RPC_URL" >/dev/null
  done
  sqlite3 "$LAB_DB" "SELECT * FROM subscriber WHERE username='alice'; SELECT * FROM dbaliases WHERE username='alice';
    SELECT * FROM acc WHERE src_user='alice' ORDER BY id DESC LIMIT 50; SELECT * FROM sip_trace ORDER BY id DESC LIMIT 50;" >/dev/null
  # SIPp echo call by the probe account, holding the media as long as dialtone's window (1 s).
  sipp_uac call.xml probe1 "$LAB_ACCOUNT_PROBE1_PASSWORD" -key target "$LAB_ECHO_NUMBER" -d 1000 || true
}

declare -a D B M
for i in $(seq 1 "$ROUNDS"); do
  t0=$(ms); "$BIN" --data-dir "$RUN/data" --json diagnose alice --config "$RUN/dialtone.toml" >"$RUN/report.json"; t1=$(ms)
  D+=($((t1 - t0)))
  M+=($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["media_window_ms"])' "$RUN/report.json"))
  t0=$(ms); baseline_once; t1=$(ms)
  B+=($((t1 - t0)))
done
outcome=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["outcome"])' "$RUN/report.json")
python3 - "$outcome" "${D[*]}" "${B[*]}" "${M[*]}" <<'PY'
import statistics, sys
outcome, d, b, m = sys.argv[1], [int(x) for x in sys.argv[2].split()], [int(x) for x in sys.argv[3].split()], [int(x) for x in sys.argv[4].split()]
md, mb, mm = statistics.median(d), statistics.median(b), statistics.median(m)
print(f"rounds: {len(d)}; diagnosis outcome: {outcome}")
print(f"dialtone diagnose (all checks, concurrent, incl. runbook walk): median {md:.0f} ms (min {min(d)}, max {max(d)})")
print(f"  of which echo media window: {mm:.0f} ms; outside the media window: {md - mm:.0f} ms")
print(f"baseline script (sipsak x2, openssl, curl x4, sqlite3, SIPp echo call, one after another): median {mb:.0f} ms (min {min(b)}, max {max(b)})")
print(f"  of which the SIPp call holds media 1000 ms; outside the media window: {mb - 1000:.0f} ms")
print(f"ratio baseline / dialtone, wall time: {mb / md:.2f}x; outside the media window: {(mb - 1000) / max(md - mm, 1):.1f}x")
print("(and the baseline decides nothing: a person still reads its output and walks the runbook)")
PY
