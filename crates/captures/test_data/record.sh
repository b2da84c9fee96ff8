#!/usr/bin/env bash
# Records the real captures and client logs in this directory from live SIP traffic:
#  - lab_udp.pcap      tcpdump on lo: SIPp UAC and baresip talking UDP to the lab's Kamailio
#                      (registrations with right, wrong and unknown accounts; calls to the echo
#                      service, a busy trunk number, an unregistered user, a missing user, and
#                      with a wrong password)
#  - lab_tcp.pcapng    tshark on "any" (Linux cooked link type): the same kinds of calls over TCP
#  - sipp_pairs.pcap   tcpdump on lo: SIPp UAC -> SIPp UAS directly (ringing then answered,
#                      codec refused 488, a UAS that never answers so the INVITE is
#                      retransmitted and times out)
#  - baresip_*.log     `baresip -v -s` logs (SIP trace on) registering and calling through the lab
# Usage: crates/captures/test_data/record.sh   (needs the lab's packages, tcpdump, tshark,
# baresip-core; listens on 127.0.0.1 only; ports from REC_BASE, default 25000).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BASE=${REC_BASE:-25000}
export LAB_SIP_PORT=$((BASE + 60)) LAB_TLS_PORT=$((BASE + 61)) LAB_RPC_PORT=$((BASE + 71))
export LAB_ECHO_PORT=$((BASE + 90)) LAB_GW_PORT=$((BASE + 92)) LAB_GW2_PORT=$((BASE + 94))
export LAB_MEDIA_BASE=$((BASE + 1000))
UAC=$((BASE + 70)) UAC_TCP=$((BASE + 75)) BARESIP=$((BASE + 80))
UAS=$((BASE + 100)) UAS_SILENT=$((BASE + 102)) PAIR_UAC=$((BASE + 104)) UAS_ANSWER=$((BASE + 106))
RUN=$(mktemp -d /tmp/captures-record.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    "$ROOT/lab/stop.sh" "$RUN/lab" >/dev/null 2>&1 || true
    rm -rf "$RUN"
}
trap cleanup EXIT

"$ROOT/lab/start.sh" "$RUN/lab"
# shellcheck disable=SC1091
. "$RUN/lab/lab.env"
D=$LAB_DOMAIN
sipp_common=(-i 127.0.0.1 -mi 127.0.0.1 -m 1 -nostdin -timeout 15s -timeout_error)

capture_start() { # file filter [iface]
    local f=$1 filter=$2 ifc=${3:-lo}
    if [[ $f == *.pcapng ]]; then
        tshark -q -i "$ifc" -f "$filter" -w "$RUN/$f" >/dev/null 2>&1 &
    else
        tcpdump -q -U --immediate-mode -i "$ifc" -w "$RUN/$f" "$filter" >/dev/null 2>&1 &
    fi
    PIDS+=($!)
    sleep 1.5
}
capture_stop() { # file
    sleep 1
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
    unset 'PIDS[-1]'
    # Copy through cat: tshark/tcpdump drop privileges and create the file as another user.
    cat "$RUN/$1" >"$HERE/$1"
}

lab_call() { # transport port user password target [pause-ms]
    sipp "$LAB_SIP_UDP" -sf "$HERE/sipp/lab_call.xml" -t "$1" -p "$2" -mp $((BASE + 2000)) \
        -key user "$3" -key domain "$D" -key target "$5" -au "$3" -ap "$4" -d "${6:-800}" \
        "${sipp_common[@]}" >/dev/null 2>&1 || true
}
lab_register() { # user password
    sipp "$LAB_SIP_UDP" -sf "$ROOT/lab/sipp/register.xml" -p "$UAC" \
        -key user "$1" -key domain "$D" -key expires 60 -key contact "sip:$1@127.0.0.1:$UAC" -au "$1" -ap "$2" \
        "${sipp_common[@]}" >/dev/null 2>&1 || true
}

baresip_run() { # log account-line seconds [commands...]
    local log=$1 account=$2 secs=$3
    shift 3
    local cfg=$RUN/baresip
    mkdir -p "$cfg"
    cat >"$cfg/config" <<CFG
poll_method epoll
sip_listen 127.0.0.1:$BARESIP
net_interface 127.0.0.1
dns_server 127.0.0.1:53
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module ausine.so
module_app account.so
module_app menu.so
audio_player aubridge,nil
audio_source ausine,nil
ausrc_srate 48000
ausrc_channels 2
sip_trace yes
${BARESIP_EXTRA:-}
CFG
    echo "$account" >"$cfg/accounts"
    : >"$cfg/contacts"
    local args=()
    for c in "$@"; do args+=(-e "$c"); done
    timeout $((secs + 5)) baresip -f "$cfg" -v -s -t "$secs" "${args[@]}" </dev/null >>"$HERE/$log" 2>&1 || true
}

pw() { local v="LAB_ACCOUNT_${1^^}_PASSWORD"; echo "${!v}"; }
outbound=";outbound=\"sip:$LAB_IP:$LAB_SIP_PORT\""

# 1. UDP: registrations and calls through Kamailio.
capture_start lab_udp.pcap "udp port $UAC or udp port $BARESIP"
lab_register alice "$(pw alice)"
lab_register alice wrong-password
lab_register nosuchuser whatever
lab_call u1 "$UAC" alice "$(pw alice)" 600 1000
lab_call u1 "$UAC" alice "$(pw alice)" 94865550000
lab_call u1 "$UAC" alice "$(pw alice)" nosuchuser
lab_call u1 "$UAC" alice "$(pw alice)" bob
lab_call u1 "$UAC" alice wrong-password 600
rm -f "$HERE"/baresip_*.log
baresip_run baresip_wrong_password.log "<sip:dave@$D>;auth_pass=not-daves-password$outbound;regint=60" 3
baresip_run baresip_calls.log "<sip:dave@$D>;auth_pass=$(pw dave)$outbound;regint=60" 4 "/dial sip:600@$D"
baresip_run baresip_calls.log "<sip:dave@$D>;auth_pass=$(pw dave)$outbound;regint=60" 3 "/dial sip:1002@$D"
baresip_run baresip_calls.log "<sip:dave@$D>;auth_pass=$(pw dave)$outbound;regint=60" 3 "/dial sip:94865550000@$D"
capture_stop lab_udp.pcap

# 2. baresip transport failures: TLS to a peer that answers in plain text (the handshake fails),
#    TCP to a port where nothing listens (connection refused).
PLAIN=$((BASE + 98))
python3 - "$PLAIN" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
s.settimeout(10)
try:
    c, _ = s.accept()
    c.settimeout(5)
    c.recv(4096)
    c.sendall(b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    time.sleep(1)
    c.close()
except OSError:
    pass
PY
PIDS=("$!" "${PIDS[@]}")
for _ in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$PLAIN " && break; sleep 0.1; done
baresip_run baresip_tls.log "<sip:dave@$D;transport=tls>;auth_pass=$(pw dave);outbound=\"sip:$LAB_IP:$PLAIN;transport=tls\";regint=60" 3
baresip_run baresip_tls.log "<sip:dave@$D;transport=tcp>;auth_pass=$(pw dave);outbound=\"sip:$LAB_IP:$((BASE + 99));transport=tcp\";regint=60" 3

# 3. TCP on the "any" pseudo-interface (Linux cooked capture).
capture_start lab_tcp.pcapng "tcp port $UAC_TCP" any
lab_call t1 "$UAC_TCP" alice "$(pw alice)" 600 500
lab_call t1 "$UAC_TCP" alice "$(pw alice)" bob
capture_stop lab_tcp.pcapng

# 4. SIPp UAC -> SIPp UAS without Kamailio: a ringing then answered call, 488, a UAS that never answers.
capture_start sipp_pairs.pcap "udp port $UAS or udp port $UAS_SILENT or udp port $UAS_ANSWER or udp port $PAIR_UAC"
bg_pid() { sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p'; } # SIPp -bg prints PID=[n] and exits 99
p=$(sipp -sf "$HERE/sipp/uas_488.xml" -p "$UAS" "${sipp_common[@]}" -bg 2>&1 | bg_pid || true)
[[ -n $p ]] && PIDS=("$p" "${PIDS[@]}")
p=$(sipp -sf "$HERE/sipp/uas_silent.xml" -p "$UAS_SILENT" "${sipp_common[@]}" -bg 2>&1 | bg_pid || true)
[[ -n $p ]] && PIDS=("$p" "${PIDS[@]}")
p=$(sipp -sf "$HERE/sipp/uas_answer.xml" -p "$UAS_ANSWER" "${sipp_common[@]}" -bg 2>&1 | bg_pid || true)
[[ -n $p ]] && PIDS=("$p" "${PIDS[@]}")
sleep 0.5
sipp "127.0.0.1:$UAS_ANSWER" -sf "$HERE/sipp/uac_call.xml" -p "$PAIR_UAC" -s erin -key from dave \
    "${sipp_common[@]}" >/dev/null 2>&1 || true
sipp "127.0.0.1:$UAS" -sf "$HERE/sipp/uac_call.xml" -p "$PAIR_UAC" -s carol -key from dave \
    "${sipp_common[@]}" >/dev/null 2>&1 || true
sipp "127.0.0.1:$UAS_SILENT" -sf "$HERE/sipp/uac_call.xml" -p "$PAIR_UAC" -s bob -key from dave \
    "${sipp_common[@]}" >/dev/null 2>&1 || true
capture_stop sipp_pairs.pcap
ls -l "$HERE"/*.pcap* "$HERE"/*.log
