#!/usr/bin/env bash
# lab/start.sh RUN_DIR: starts the dialtone SIP lab (Kamailio + SIPp echo and
# gateway) on loopback, writes RUN_DIR/lab.env, returns when Kamailio answers.
# Ports and options come from LAB_* variables (see lab/README.md).
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$LAB_DIR/lib.sh"

[[ $# -eq 1 && -n $1 ]] || die "usage: lab/start.sh RUN_DIR"
mkdir -p "$1" || die "cannot create run directory $1"
RUN_DIR=$(cd "$1" && pwd)
started_ms=$(now_ms)

lab_defaults
is_loopback_ipv4 "$LAB_IP" || die "LAB_IP=$LAB_IP refused: the lab listens on a loopback address (127.0.0.0/8) only"
is_loopback_ipv4 "$LAB_DOMAIN" || [[ $LAB_DOMAIN =~ ^[a-z0-9.-]+$ ]] || die "LAB_DOMAIN=$LAB_DOMAIN is not a valid domain"
for v in LAB_SIP_PORT LAB_TLS_PORT LAB_RPC_PORT LAB_ECHO_PORT LAB_GW_PORT LAB_GW2_PORT; do
    is_port "${!v}" || die "$v=${!v} is not a port number"
done
is_port "$LAB_MEDIA_BASE" && ((LAB_MEDIA_BASE <= 65529)) || die "LAB_MEDIA_BASE=$LAB_MEDIA_BASE is not a usable port (needs base..base+7)"
[[ $LAB_AUTH == 403 || $LAB_AUTH == 401 ]] || die "LAB_AUTH must be 403 or 401"
[[ $LAB_DIGEST_ALGORITHM == MD5 || $LAB_DIGEST_ALGORITHM == SHA-256 ]] || die "LAB_DIGEST_ALGORITHM must be MD5 or SHA-256"
[[ $(all_ports | tr ' ' '\n' | sed '/^$/d' | sort | uniq -d) == "" ]] || die "two LAB_* ports are equal: $(all_ports)"
check_variants
for f in "$KAMAILIO_BIN" "$SIPP_BIN"; do [[ -x $f ]] || die "$f not found (install kamailio, sip-tester)"; done
for c in sqlite3 openssl curl ss setsid; do command -v "$c" >/dev/null || die "$c not found"; done

if [[ -s $RUN_DIR/kamailio.pid ]] && kill -0 "$(cat "$RUN_DIR/kamailio.pid")" 2>/dev/null; then
    die "a lab is already running in $RUN_DIR (run lab/stop.sh $RUN_DIR first)"
fi

busy=""
for p in $(all_ports); do
    users=$(port_users "$p")
    [[ -n $users ]] && busy+="  port $p: $(echo "$users" | head -n1 | tr -s ' ')"$'\n'
done
[[ -z $busy ]] || die "ports already in use (set LAB_*_PORT / LAB_MEDIA_BASE, or stop what holds them):"$'\n'"$busy"

LAB_DB=$RUN_DIR/lab.sqlite
rm -f "$RUN_DIR/faults" "$RUN_DIR/kamailio.log"
if [[ $LAB_DB_ENGINE == mysql ]]; then
    # Always a fresh database (LAB_KEEP_DB is for SQLite only); LAB_DB is its name.
    RUN_DIR=$RUN_DIR drop_db_mysql || true
    create_db
    LAB_DB=$MYSQL_LAB_DB
elif [[ ${LAB_KEEP_DB:-0} == 1 && -s $LAB_DB ]]; then
    log "keeping the existing database $LAB_DB"
else
    create_db
fi
LAB_DB_URL=$(db_url)
make_certs
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN_DIR/auth.secret"

write_env() {
    local e=$RUN_DIR/lab.env entry up accounts=()
    {
        echo "# dialtone lab environment, written by lab/start.sh (shell KEY=VALUE)"
        echo "LAB_RUN_DIR=$RUN_DIR"
        echo "LAB_DIR=$LAB_DIR"
        echo "LAB_IP=$LAB_IP"
        echo "LAB_DOMAIN=$LAB_DOMAIN"
        echo "LAB_REALM=$LAB_DOMAIN"
        echo "LAB_SIP_PORT=$LAB_SIP_PORT"
        echo "LAB_TLS_PORT=$LAB_TLS_PORT"
        echo "LAB_RPC_PORT=$LAB_RPC_PORT"
        echo "LAB_ECHO_PORT=$LAB_ECHO_PORT"
        echo "LAB_GW_PORT=$LAB_GW_PORT"
        echo "LAB_GW2_PORT=$LAB_GW2_PORT"
        echo "LAB_MEDIA_BASE=$LAB_MEDIA_BASE"
        echo "LAB_ECHO_MEDIA_PORT=$(echo_media_port)"
        echo "LAB_GW_MEDIA_PORT=$(gw_media_port)"
        echo "LAB_SIP_UDP=$LAB_IP:$LAB_SIP_PORT"
        echo "LAB_SIP_TCP=$LAB_IP:$LAB_SIP_PORT"
        echo "LAB_SIP_TLS=$LAB_IP:$LAB_TLS_PORT"
        echo "LAB_SIP_URI=sip:$LAB_IP:$LAB_SIP_PORT"
        echo "LAB_SIPS_URI=sip:$LAB_IP:$LAB_TLS_PORT;transport=tls"
        echo "LAB_RPC_URL=http://$LAB_IP:$LAB_RPC_PORT/RPC"
        echo "LAB_DB=$LAB_DB"
        echo "LAB_DB_URL=$LAB_DB_URL"
        echo "LAB_DB_ENGINE=$LAB_DB_ENGINE"
        echo "LAB_ACC=$LAB_ACC"
        echo "LAB_TRACE=$LAB_TRACE"
        echo "LAB_HEP_ADDR=$([[ $LAB_TRACE == hep ]] && echo "$LAB_HEP_ADDR")"
        echo "LAB_USRLOC=$LAB_USRLOC"
        echo "LAB_USRLOC_TIMER=$LAB_USRLOC_TIMER"
        echo "LAB_RPC=$LAB_RPC"
        echo "LAB_AUTH_STORE=$LAB_AUTH_STORE"
        echo "LAB_TRUNKS=$LAB_TRUNKS"
        echo "LAB_DOMAINS=$LAB_DOMAINS"
        echo "LAB_DOMAIN2=$([[ $LAB_DOMAINS == 2 ]] && echo "$LAB_DOMAIN2")"
        echo "LAB_CA_CERT=$RUN_DIR/tls/ca.pem"
        echo "LAB_TLS_CERT=$RUN_DIR/tls/server.pem"
        echo "LAB_TLS_KEY=$RUN_DIR/tls/server.key"
        echo "LAB_KAMAILIO_LOG=$RUN_DIR/kamailio.log"
        echo "LAB_KAMAILIO_CFG=$RUN_DIR/kamailio.cfg"
        echo "LAB_ECHO_NUMBER=$LAB_ECHO_NUMBER"
        echo "LAB_ECHO_USER=echo"
        echo "LAB_ECHO_URI=sip:$LAB_IP:$LAB_ECHO_PORT"
        echo "LAB_TRUNK_PREFIX=$LAB_TRUNK_PREFIX"
        echo "LAB_GW_URI=sip:$LAB_IP:$LAB_GW_PORT"
        echo "LAB_GW2_URI=sip:$LAB_IP:$LAB_GW2_PORT"
        echo "LAB_AUTH=$LAB_AUTH"
        echo "LAB_DIGEST_ALGORITHM=$LAB_DIGEST_ALGORITHM"
        for entry in $(seed_entries); do
            seed_account "${entry%%:*}"
            up=$(echo "$SEED_USER" | tr '[:lower:]' '[:upper:]')
            accounts+=("$SEED_USER")
            echo "LAB_ACCOUNT_${up}_USER=$SEED_USER"
            echo "LAB_ACCOUNT_${up}_PASSWORD=$SEED_PASSWORD"
            echo "LAB_ACCOUNT_${up}_NUMBERS=$SEED_NUMBERS"
            echo "LAB_ACCOUNT_${up}_DOMAIN=$SEED_DOMAIN"
        done
        echo "LAB_ACCOUNTS=$(IFS=,; echo "${accounts[*]}")"
    } >"$e.tmp"
    mv "$e.tmp" "$e"
}
write_env

cleanup_on_failure() {
    stop_pids "$RUN_DIR/kamailio.pid" "$RUN_DIR/sipp-echo.pid" "$RUN_DIR/sipp-gw.pid"
    drop_db_mysql || true
    die "start failed; see $RUN_DIR"
}
start_echo || cleanup_on_failure
start_gateway || cleanup_on_failure
start_kamailio || cleanup_on_failure
rpc_note="RPC http://$LAB_IP:$LAB_RPC_PORT/RPC"
[[ $LAB_RPC == on ]] || rpc_note="no RPC"
log "lab up in $(($(now_ms) - started_ms)) ms: SIP $LAB_IP:$LAB_SIP_PORT (udp/tcp), TLS $LAB_TLS_PORT, $rpc_note;" \
    "db $LAB_DB_ENGINE, acc $LAB_ACC, trace $LAB_TRACE, usrloc $LAB_USRLOC, auth $LAB_AUTH_STORE, trunks $LAB_TRUNKS; env in $RUN_DIR/lab.env"
