#!/usr/bin/env bash
# bench/captures.sh: builds a large SIP capture from live SIPp traffic through the lab's
# Kamailio (SIPp UAC alice -> Kamailio -> a SIPp UAS registered as bob that rings 150 ms and
# answers; digest auth on every INVITE; tcpdump on lo filtered to the UAC's port, so one leg per
# call: INVITE 407 ACK INVITE 100 180 200 ACK BYE 200). Kamailio on this 2-core machine
# (shared with builds) times calls out above ~100 calls/s, so RECORD calls (2000) are recorded
# live at RATE and the capture is replicated to CALLS (20000) with fresh Call-IDs and shifted
# times (bench/captures_replicate.py). Then it is analysed fully by the release `dialtone`
# binary users run (`dialtone capture analyze FILE`, and with `--json`) and, on the same file, with
#   tshark -r FILE -Y sip -q -z sip,stat      and      sngrep -I FILE -N -q
# (Pipelines here read their input to the end: with pipefail, `head` would kill the script.)
# Prints size, SIP messages, wall time, MB/s, peak RSS (/usr/bin/time -v) and the ratios.
# RING=1 also measures the capture split into 10 files (editcap -c, a tcpdump -C ring buffer)
# read as one capture from their directory, and a gzip copy of each part.
# Then a capture with RTP: MEDIA_CALLS (2000) calls recorded live through the lab (SIPp
# media_call.xml plays 0.4 s of PCMU with play_pcap_audio to a SIPp UAS registered as bob that
# runs -rtp_echo; MEDIA_UACS (10) SIPp UACs in parallel, one call at a time each, each on its
# own media port), cached in MEDIA_CACHE (/tmp/dialtone-bench-media-<calls>.pcap); measured the
# same way, with the media verdicts dialtone finds. MEDIA=0 skips it.
# Settings: CALLS (20000), RECORD (2000; = CALLS for a fully live capture), RATE calls/s (100),
# HOLD ms (200), BENCH_BASE port block (35000),
# BENCH_PCAP=file to skip recording and measure an existing capture, RUNS (3, best of, for
# dialtone), BASELINE_RUNS (1, for tshark and sngrep, which take seconds to minutes).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CALLS=${CALLS:-20000} RECORD=${RECORD:-2000} RATE=${RATE:-100} HOLD=${HOLD:-200} RUNS=${RUNS:-3}
BASE=${BENCH_BASE:-35000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/dialtone/target}
WORK=$(mktemp -d /tmp/captures-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -d $WORK/lab ]] && "$ROOT/lab/stop.sh" "$WORK/lab" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for c in tshark sngrep tcpdump sipp /usr/bin/time; do
    command -v "$c" >/dev/null || { echo "bench: $c not found (apt-get install tshark sngrep tcpdump sip-tester time)" >&2; exit 1; }
done

echo "== building the release dialtone binary"
(cd "$ROOT" && cargo build --quiet --release -p dialtone)
# Other worktrees share the target directory: measure a private copy.
DIALTONE=$WORK/dialtone
cp "$CARGO_TARGET_DIR/release/dialtone" "$DIALTONE"

if [[ -n ${BENCH_PCAP:-} ]]; then
    PCAP=$BENCH_PCAP
else
    export LAB_SIP_PORT=$((BASE + 60)) LAB_TLS_PORT=$((BASE + 61)) LAB_RPC_PORT=$((BASE + 71))
    export LAB_ECHO_PORT=$((BASE + 90)) LAB_GW_PORT=$((BASE + 92)) LAB_GW2_PORT=$((BASE + 94))
    export LAB_MEDIA_BASE=$((BASE + 1000))
    UAC=$((BASE + 70)) UAS=$((BASE + 80))
    "$ROOT/lab/start.sh" "$WORK/lab" >/dev/null
    # shellcheck disable=SC1091
    . "$WORK/lab/lab.env"
    PCAP=$WORK/recorded.pcap
    # The callee: a SIPp UAS registered as bob (the echo service's dispatcher marks its SIPp
    # inactive under load and Kamailio answers 503, which would measure the wrong thing).
    sipp -sf "$ROOT/crates/captures/test_data/sipp/uas_answer.xml" -p "$UAS" -i 127.0.0.1 \
        -mi 127.0.0.1 -mp $((BASE + 3000)) -nostdin -bg >"$WORK/uas.out" 2>&1 || true
    p=$(sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' "$WORK/uas.out")
    [[ -n $p ]] && PIDS=("$p" "${PIDS[@]}")
    sipp "$LAB_SIP_UDP" -sf "$ROOT/lab/sipp/register.xml" -key user bob -key domain "$LAB_DOMAIN" \
        -key expires 3600 -key contact "sip:bob@127.0.0.1:$UAS" -au bob -ap "$LAB_ACCOUNT_BOB_PASSWORD" \
        -p $((BASE + 81)) -i 127.0.0.1 -m 1 -nostdin -timeout 10s >/dev/null 2>&1 ||
        { echo "bench: registering bob failed" >&2; exit 1; }
    echo "== recording $RECORD calls at $RATE calls/s through Kamailio ($LAB_SIP_UDP)"
    tcpdump -q -U --immediate-mode -B 32768 -i lo -w "$PCAP" "udp port $UAC" 2>"$WORK/tcpdump.err" &
    PIDS+=($!)
    for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.err" && break; sleep 0.1; done
    started=$(date +%s.%N)
    sipp "$LAB_SIP_UDP" -sf "$ROOT/crates/captures/test_data/sipp/lab_call.xml" -key user alice -key domain "$LAB_DOMAIN" \
        -key target bob -au alice -ap "$LAB_ACCOUNT_ALICE_PASSWORD" -d "$HOLD" \
        -r "$RATE" -m "$RECORD" -l $((RATE * 10)) -p "$UAC" -i 127.0.0.1 -mi 127.0.0.1 \
        -mp $((BASE + 2000)) -nostdin -timeout $((RECORD / RATE * 4 + 60))s \
        -trace_stat -stf "$WORK/sipp.csv" >/dev/null 2>&1 || echo "   (sipp reported failed calls: see below)"
    ended=$(date +%s.%N)
    sleep 1
    kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
    unset 'PIDS[-1]'
    grep -E "captured|dropped" "$WORK/tcpdump.err" | sed 's/^/   tcpdump: /'
    tail -n1 "$WORK/sipp.csv" | awk -F';' '{print "   sipp: successful " $16 ", failed " $18}' 2>/dev/null || true
    printf '   recording took %.1f s\n' "$(echo "$ended - $started" | bc)"
    "$ROOT/lab/stop.sh" "$WORK/lab" >/dev/null 2>&1 || true
    if ((CALLS > RECORD)); then
        copies=$(((CALLS + RECORD - 1) / RECORD))
        echo "== replicating the recording $copies times (new Call-IDs, shifted times)"
        python3 "$ROOT/bench/captures_replicate.py" "$PCAP" "$WORK/big.pcap" "$copies"
        rm -f "$PCAP"
        PCAP=$WORK/big.pcap
    fi
fi

SIZE=$(stat -c %s "$PCAP")
echo "== capture: $PCAP, $SIZE bytes; what dialtone finds in it:"
"$DIALTONE" capture analyze "$PCAP" 2>/dev/null | sed -n '/^Findings:/,$p' | sed -n '1,8s/^/   /p'
[[ -n ${BENCH_KEEP:-} ]] && cp "$PCAP" "$BENCH_KEEP"

measure() { # name command... ; sets SECS and RSS_KB (best wall time of RUNS)
    local name=$1
    shift
    SECS=999999 RSS_KB=0 CPU=0
    for _ in $(seq "$RUNS"); do
        local w r c t0 t1
        t0=$(date +%s.%N)
        /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.time" </dev/null || true
        t1=$(date +%s.%N)
        # Wall clock from date (time -v rounds to 10 ms), peak RSS from time -v.
        w=$(echo "$t1 - $t0" | bc)
        r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time")
        # CPU seconds (user + system): the figure that holds on a shared, loaded machine.
        c=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WORK/$name.time")
        if (($(echo "$w < $SECS" | bc))); then SECS=$w RSS_KB=$r CPU=$c; fi
    done
}

bench_file() { # PCAP: dialtone (table, --json), tshark, sngrep on one file, one row each
    local PCAP=$1
    SIZE=$(stat -c %s "$PCAP")
measure dialtone "$DIALTONE" capture analyze "$PCAP"
D_SECS=$SECS D_RSS=$RSS_KB D_CPU=$CPU
grep -o "^Calls: [0-9]*.*" "$WORK/dialtone.out" | head -1 | sed 's/^/   dialtone: /' || true
measure json "$DIALTONE" --json capture analyze "$PCAP"
J_SECS=$SECS J_RSS=$RSS_KB J_CPU=$CPU
echo "   dialtone --json: $(grep -c '"type":"call"' "$WORK/json.out") call lines, $(wc -c <"$WORK/json.out") bytes of NDJSON"
tail -n1 "$WORK/json.out" | grep -o '"sip_messages":[0-9]*' | sed 's/^/   dialtone --json: /' || true
RUNS=${BASELINE_RUNS:-1} measure tshark tshark -r "$PCAP" -Y sip -q -z sip,stat
T_SECS=$SECS T_RSS=$RSS_KB T_CPU=$CPU
RUNS=${BASELINE_RUNS:-1} measure sngrep sngrep -I "$PCAP" -N -q
S_SECS=$SECS S_RSS=$RSS_KB S_CPU=$CPU

row() { # name secs rss cpu
    local mbs cmbs
    mbs=$(echo "scale=1; $SIZE / 1000000 / ($2 + 0.0005)" | bc)
    cmbs=$(echo "scale=1; $SIZE / 1000000 / ($4 + 0.005)" | bc)
    local ratio="(reference)"
    [[ $1 == "dialtone" ]] || ratio="wall $(echo "scale=1; $2 / ($D_SECS + 0.0005)" | bc)x, cpu $(echo "scale=1; $4 / ($D_CPU + 0.005)" | bc)x dialtone's"
    printf '%-16s %8.3f s %8s MB/s  cpu %6.2f s %8s MB/s  %6d MiB peak RSS   %s\n' "$1" "$2" "$mbs" "$4" "$cmbs" $(($3 / 1024)) "$ratio"
}
echo "== results (dialtone best of $RUNS, baselines best of ${BASELINE_RUNS:-1}; wall clock of the whole process; MB = 10^6 bytes)"
row dialtone "$D_SECS" "$D_RSS" "$D_CPU"
row "dialtone --json" "$J_SECS" "$J_RSS" "$J_CPU"
row tshark "$T_SECS" "$T_RSS" "$T_CPU"
row sngrep "$S_SECS" "$S_RSS" "$S_CPU"
}
bench_file "$PCAP"

if [[ -n ${RING:-} ]]; then
    command -v editcap >/dev/null || { echo "bench: editcap not found (apt-get install tshark)" >&2; exit 1; }
    packets=$(tail -n1 "$WORK/json.out" | grep -o '"packets":[0-9]*' | cut -d: -f2)
    mkdir -p "$WORK/ring" "$WORK/ringgz"
    editcap -c $(((packets + 9) / 10)) "$PCAP" "$WORK/ring/ring.pcap" >/dev/null
    for f in "$WORK"/ring/*; do gzip -c "$f" >"$WORK/ringgz/$(basename "$f").gz"; done
    measure ring "$DIALTONE" capture analyze "$WORK/ring"
    row "ring (10 files)" "$SECS" "$RSS_KB" "$CPU"
    measure ringgz "$DIALTONE" capture analyze "$WORK/ringgz"
    row "ring .gz" "$SECS" "$RSS_KB" "$CPU"
    echo "   (gzip copies: $(du -cb "$WORK"/ringgz/* | tail -n1 | cut -f1) bytes; MB/s above counts the uncompressed size)"
fi

if [[ ${MEDIA:-1} != 0 ]]; then
    MEDIA_CALLS=${MEDIA_CALLS:-2000} MEDIA_UACS=${MEDIA_UACS:-10}
    MEDIA_CACHE=${MEDIA_CACHE:-/tmp/dialtone-bench-media-$MEDIA_CALLS.pcap}
    if [[ ! -s $MEDIA_CACHE ]]; then
        export LAB_SIP_PORT=$((BASE + 60)) LAB_TLS_PORT=$((BASE + 61)) LAB_RPC_PORT=$((BASE + 71))
        export LAB_ECHO_PORT=$((BASE + 90)) LAB_GW_PORT=$((BASE + 92)) LAB_GW2_PORT=$((BASE + 94))
        export LAB_MEDIA_BASE=$((BASE + 1000))
        "$ROOT/lab/start.sh" "$WORK/mlab" >/dev/null
        # shellcheck disable=SC1091
        . "$WORK/mlab/lab.env"
        MUAS=$((BASE + 82)) MUAS_MEDIA=$((BASE + 4000)) MUAC=$((BASE + 200)) MMEDIA=$((BASE + 5000))
        # 0.4 s of PCMU (20 packets of 20 ms) for play_pcap_audio, which rewrites the addresses.
        python3 - "$WORK/audio.pcap" <<'PY'
import struct, sys
out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
for i in range(20):
    rtp = struct.pack("!BBHII", 0x80, 0, 1000 + i, i * 160, 0x12345678) + b"\xff" * 160
    udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
    frame = b"\0" * 12 + b"\x08\x00" + ip
    out.append(struct.pack("<IIII", 1000000, i * 20000, len(frame), len(frame)) + frame)
open(sys.argv[1], "wb").write(b"".join(out))
PY
        # bob: a SIPp UAS that answers at once and echoes RTP (the lab's echo scenario).
        sipp -sf "$ROOT/lab/sipp/echo_uas.xml" -p "$MUAS" -i 127.0.0.1 -mi 127.0.0.1 -mp "$MUAS_MEDIA" \
            -rtp_echo -nostdin -bg >"$WORK/muas.out" 2>&1 || true
        p=$(sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' "$WORK/muas.out")
        [[ -n $p ]] && PIDS=("$p" "${PIDS[@]}")
        sipp "$LAB_SIP_UDP" -sf "$ROOT/lab/sipp/register.xml" -key user bob -key domain "$LAB_DOMAIN" \
            -key expires 3600 -key contact "sip:bob@127.0.0.1:$MUAS" -au bob -ap "$LAB_ACCOUNT_BOB_PASSWORD" \
            -p $((BASE + 81)) -i 127.0.0.1 -m 1 -nostdin -timeout 10s >/dev/null 2>&1 ||
            { echo "bench: registering bob failed" >&2; exit 1; }
        echo "== recording $MEDIA_CALLS calls with RTP through Kamailio ($MEDIA_UACS SIPp UACs, echo UAS)"
        MPCAP=$WORK/media.pcap
        tcpdump -q -U --immediate-mode -B 32768 -i lo -w "$MPCAP" \
            "udp portrange $MUAC-$((MUAC + MEDIA_UACS - 1)) or udp portrange $MMEDIA-$((MMEDIA + 4 * MEDIA_UACS)) or udp port $MUAS_MEDIA" \
            2>"$WORK/mtcpdump.err" &
        PIDS+=($!)
        for _ in $(seq 50); do grep -q "listening on" "$WORK/mtcpdump.err" && break; sleep 0.1; done
        started=$(date +%s.%N)
        uacs=()
        for i in $(seq 0 $((MEDIA_UACS - 1))); do
            (cd "$WORK" && sipp "$LAB_SIP_UDP" -sf "$ROOT/crates/captures/test_data/sipp/media_call.xml" \
                -key user alice -key domain "$LAB_DOMAIN" -key target bob -key sdp_ip 127.0.0.1 \
                -au alice -ap "$LAB_ACCOUNT_ALICE_PASSWORD" -d 450 -l 1 -m $((MEDIA_CALLS / MEDIA_UACS)) \
                -p $((MUAC + i)) -i 127.0.0.1 -mi 127.0.0.1 -mp $((MMEDIA + 4 * i)) -nostdin \
                -timeout $((MEDIA_CALLS / MEDIA_UACS * 3 + 60))s -trace_stat -stf "$WORK/msipp$i.csv" \
                >/dev/null 2>&1) &
            uacs+=($!)
        done
        for u in "${uacs[@]}"; do wait "$u" || echo "   (a SIPp UAC reported failed calls)"; done
        ended=$(date +%s.%N)
        sleep 1
        kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
        unset 'PIDS[-1]'
        grep -E "captured|dropped" "$WORK/mtcpdump.err" | sed 's/^/   tcpdump: /'
        printf '   recording took %.1f s\n' "$(echo "$ended - $started" | bc)"
        "$ROOT/lab/stop.sh" "$WORK/mlab" >/dev/null 2>&1 || true
        cp "$MPCAP" "$MEDIA_CACHE"
    fi
    echo "== capture with RTP: $MEDIA_CACHE, $(stat -c %s "$MEDIA_CACHE") bytes; media verdicts:"
    "$DIALTONE" --json capture analyze "$MEDIA_CACHE" 2>/dev/null | python3 -c '
import collections, json, sys
v = collections.Counter()
for line in sys.stdin:
    o = json.loads(line)
    if o.get("type") == "call":
        v[(o.get("media") or {}).get("verdict", "no SDP")] += 1
    elif o.get("type") == "summary":
        m = o["stats"]["media"]
        print("   %d RTP packets, %d streams, %d RTCP packets, peak %d streams open" % (
            m["rtp_packets"], m["rtp_streams"], m["rtcp_packets"], m["peak_open_streams"]))
print("   calls by media verdict: " + ", ".join("%s %d" % kv for kv in sorted(v.items())))
'
    bench_file "$MEDIA_CACHE"
fi
