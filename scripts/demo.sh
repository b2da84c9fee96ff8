#!/usr/bin/env bash
# The main job, end to end: start the lab, break it in three ways, and let dialtone find out
# why each user can't call. Run through `./run demo` (it builds dialtone first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DIALTONE_BIN:-${CARGO_TARGET_DIR:-target}/release/dialtone}
RUN=$(mktemp -d /tmp/dialtone-demo.XXXXXX)
DATA=$RUN/data
# A port block of its own, so the demo does not disturb a lab on the default ports.
export LAB_SIP_PORT=${LAB_SIP_PORT:-15060} LAB_TLS_PORT=${LAB_TLS_PORT:-15061} LAB_RPC_PORT=${LAB_RPC_PORT:-15071}
export LAB_ECHO_PORT=${LAB_ECHO_PORT:-15090} LAB_GW_PORT=${LAB_GW_PORT:-15092} LAB_GW2_PORT=${LAB_GW2_PORT:-15094}
export LAB_MEDIA_BASE=${LAB_MEDIA_BASE:-21000}

cleanup() { lab/stop.sh "$RUN" >/dev/null 2>&1 || true; }
trap cleanup EXIT
title() { printf '\n\033[1m━━ %s\033[0m\n' "$*"; }

title "Starting the lab (Kamailio + SIPp echo service + SIPp trunk gateway, on loopback)"
for try in 1 2 3; do lab/start.sh "$RUN" && break; [ "$try" = 3 ] && exit 1; sleep 1; done
# shellcheck disable=SC1091
. "$RUN/lab.env"
scripts/lab-config.sh "$RUN" >"$RUN/dialtone.toml"
dt() { "$BIN" --data-dir "$DATA" "$@"; }

# SIPp plays the users' phones.
sipp_uac() { # scenario user password [sipp args...]
  local scenario=$1 user=$2 pass=$3; shift 3
  sipp "$LAB_SIP_UDP" -sf "lab/sipp/$scenario" -t u1 -m 1 -nostdin -timeout 15 -timeout_error \
    -i "$LAB_IP" -mi "$LAB_IP" -p 0 -key user "$user" -key domain "$LAB_DOMAIN" \
    -key contact "sip:$user@$LAB_IP:5999" -key expires 300 -au "$user" -ap "$pass" "$@" >/dev/null 2>&1 || true
}
pw() { local v="LAB_ACCOUNT_${1^^}_PASSWORD"; echo "${!v}"; }

title "0. What dialtone can read on this server (the first command on a new server)"
dt doctor --config "$RUN/dialtone.toml" | sed -n '1,/^Runbook steps/p' || true

title "1. Alice says she can't call. Her phone registers and calls the echo service and a trunk number."
sipp_uac register.xml alice "$(pw alice)"
sipp_uac call.xml alice "$(pw alice)" -key target 600 -d 500
echo "   ... then the trunk gateway dies, and her call to 95551234 fails."
lab/fault.sh "$RUN" kill-gateway
sleep 6   # the server's OPTIONS probing notices the dead gateway
sipp_uac call.xml alice "$(pw alice)" -key target 95551234 -d 500
dt incident open --account alice --reporter "Alice" --description "can't call outside numbers" >/dev/null
dt diagnose alice --config "$RUN/dialtone.toml" --incident 1

title "2. Carol can't call: her app has a wrong password."
sipp_uac register.xml carol "wrong-password"
dt diagnose carol --config "$RUN/dialtone.toml"

title "3. Dave can't call: the server's TLS certificate has expired."
lab/fault.sh "$RUN" tls-expired
dt diagnose dave --config "$RUN/dialtone.toml" --answer gate.client_error=none

title "The incident dialtone filled in for Alice"
dt incident show 1
