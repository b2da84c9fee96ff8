#!/usr/bin/env bash
# bench/hep.sh: the HEPv3 capture endpoint under load. Starts the real release `dialtone collect`
# pinned to one core (taskset -c 0), sends N HEP-encoded SIP messages over UDP on loopback from
# the hidden sender `dialtone collect --bench-send` pinned to the other core (a realistic mix from
# 10,000 accounts: half registrations REGISTER/401/REGISTER/200, half calls
# INVITE/100/180/200/ACK/BYE/200, one call in five failing with 503/ACK), paced at RATE msg/s in
# bursts of 50 so that the figure measures the collector, not the kernel's socket buffer.
# Prints messages/s received and stored (first packet sent -> last batch committed), the drops
# (queue full, counted by the collector; and lost on loopback = sent - received), the peak RSS of
# the collector (VmHWM) and the size of the events file, and the ratio to the target of
# 50,000 msg/s.
# Usage: bench/hep.sh [N (1000000)] [RATE (100000)]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-1000000}
RATE=${2:-100000}
TARGET=50000
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
BIN=${DIALTONE_BIN:-$CARGO_TARGET_DIR/release/dialtone}
command -v taskset >/dev/null || { echo "bench: taskset not found (apt-get install util-linux)" >&2; exit 1; }
if [[ -z ${DIALTONE_BIN:-} ]]; then
    echo "== building the release binary"
    (cd "$ROOT" && cargo build --quiet --release -p dialtone)
fi
WORK=$(mktemp -d /tmp/hep-bench.XXXXXX)
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

taskset -c 0 "$BIN" --data-dir "$WORK" collect --hep 127.0.0.1:0 --max-events 2000000 \
    >"$WORK/collect.out" 2>"$WORK/collect.err" &
PID=$!
for _ in $(seq 100); do
    grep -q "collecting HEP" "$WORK/collect.out" 2>/dev/null && break
    sleep 0.1
done
PORT=$(grep -o 'udp 127.0.0.1:[0-9]*' "$WORK/collect.out" | cut -d: -f2)
[[ -n $PORT ]] || { echo "bench: the collector did not start:" >&2; cat "$WORK/collect.err" >&2; exit 1; }

stats() { "$BIN" --data-dir "$WORK" --json events --stats; }
echo "== sending $N messages at $RATE msg/s to udp 127.0.0.1:$PORT (collector pid $PID on core 0)"
T0=$(date +%s.%N)
taskset -c 1 "$BIN" collect --hep "127.0.0.1:$PORT" --bench-send "$N" --bench-rate "$RATE"
# Wait until the window stops growing (bounded: 120 s).
last=-1
for _ in $(seq 240); do
    sleep 0.5
    now=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
    [[ $now == "$last" ]] && break
    last=$now
done
STATS=$(stats)
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
kill -INT "$PID"
wait "$PID" || true
PID=""
FINAL=$(grep '^stopped:' "$WORK/collect.out" || true)
SIZE=$(du -cb "$WORK"/events.sqlite* | tail -1 | cut -f1)
python3 - "$N" "$T0" "$HWM" "$SIZE" "$TARGET" "$STATS" "$FINAL" <<'PY'
import json, re, sys
from datetime import datetime
n, t0, hwm, size, target = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
st, final = json.loads(sys.argv[6]), sys.argv[7]
nums = dict((k, int(v)) for v, k in re.findall(r"(\d+) (packets received|messages stored|malformed|ignored|dropped)", final))
received, stored = nums.get("packets received", 0), nums.get("messages stored", 0)
last = datetime.fromisoformat(st["last_received"].replace("Z", "+00:00")).timestamp()
secs = max(last - t0, 1e-6)
rate = received / secs
print(f"collector (1 core): {received} packets received in {secs:.2f} s = {rate:,.0f} msg/s received and stored"
      f" ({stored / secs:,.0f} rows/s; {nums.get('ignored', 0)} ACKs ignored as designed)")
print(f"drops: {nums.get('dropped', 0)} by the collector (queue full), {n - received} lost on loopback before it"
      f" (sent {n}), {nums.get('malformed', 0)} malformed")
print(f"peak RSS of the collector (VmHWM): {hwm / 1024:.1f} MiB")
print(f"events file: {size / 1e6:.1f} MB for {st['events']} messages, {st['registration_attempts']} registration attempts,"
      f" {st['calls']} calls ({size / max(st['events'], 1):.0f} bytes per message)")
print(f"ratio to the target of {target:,} msg/s: {rate / target:.2f}x")
PY
