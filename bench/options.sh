#!/usr/bin/env bash
# Benchmark: OPTIONS round trip against the lab's Kamailio, one process per probe for both tools,
# so the comparison is like for like: `dialtone probe options` versus `sipsak -s` (the baseline).
# Prints p50/p99 of each and the ratio. (In-process figures without process start-up:
# `cargo bench -p sip-probe --bench probe`.)
# Usage: bench/options.sh [N] [udp|tcp]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
T=${2:-udp}
BIN=${DIALTONE_BIN:-${CARGO_TARGET_DIR:-/var/cache/dialtone/target}/release/dialtone}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p dialtone" >&2; exit 1; }
command -v sipsak >/dev/null || { echo "needs sipsak (apt-get install sipsak)" >&2; exit 1; }
RUN=$(mktemp -d /tmp/dialtone-bench.XXXXXX)
# sipsak 0.9.8 truncates five-digit ports in its Request-URI, so the lab gets a four-digit one.
export LAB_SIP_PORT=7060 LAB_TLS_PORT=7061 LAB_RPC_PORT=7071 LAB_ECHO_PORT=7090 LAB_GW_PORT=7092 LAB_GW2_PORT=7094 LAB_MEDIA_BASE=24000
trap 'lab/stop.sh "$RUN" >/dev/null 2>&1 || true; rm -rf "$RUN"' EXIT
for try in 1 2 3; do lab/start.sh "$RUN" >/dev/null && break; [ "$try" = 3 ] && exit 1; sleep 1; done
. "$RUN/lab.env"
sipsak_t=""; [ "$T" = tcp ] && sipsak_t="-E tcp"
python3 - "$N" "$BIN" "$LAB_IP" "$LAB_SIP_PORT" "$T" "$sipsak_t" <<'PY'
import subprocess, sys, time, statistics
n, bin_, ip, port, t, sipsak_t = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def run(cmd):
    xs, fails = [], 0
    for _ in range(n):
        t0 = time.perf_counter(); r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); t1 = time.perf_counter()
        if r.returncode != 0: fails += 1
        xs.append((t1 - t0) * 1000)
    xs.sort()
    return xs[len(xs) // 2], xs[int(len(xs) * 0.99) - 1], fails
d = run([bin_, "probe", "options", "--host", ip, "--port", port, "--transport", t])
s = run(["sipsak", *sipsak_t.split(), "-s", f"sip:{ip}:{port}"])
print(f"OPTIONS over {t.upper()}, {n} probes, one process each (start-up included)")
print(f"dialtone probe options: p50 {d[0]:.2f} ms, p99 {d[1]:.2f} ms, failures {d[2]}")
print(f"sipsak -s (baseline):   p50 {s[0]:.2f} ms, p99 {s[1]:.2f} ms, failures {s[2]}")
print(f"ratio sipsak / dialtone: p50 {s[0] / d[0]:.2f}x, p99 {s[1] / d[1]:.2f}x")
PY
