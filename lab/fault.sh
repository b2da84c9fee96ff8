#!/usr/bin/env bash
# lab/fault.sh RUN_DIR FAULT [ARGS]: injects (or undoes) a fault in the lab
# running in RUN_DIR. The list of faults is in lab/README.md and in usage().
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$LAB_DIR/lib.sh"

usage() {
    cat >&2 <<'USAGE'
usage: lab/fault.sh RUN_DIR FAULT [ARGS]
  remove-account USER          delete the account, its numbers and registrations
  restore-account USER         re-create a seeded account (password and numbers)
  duplicate-number USER NUMBER give NUMBER (already another account's) to USER too
  remove-number NUMBER [USER]  delete NUMBER (only USER's row when USER is given)
  stop-echo | start-echo       stop / restart the SIPp echo service
  kill-gateway | start-gateway kill (SIGKILL) / restart the trunk gateway gw1
  tls-expired | tls-untrusted  serve an expired / unknown-CA certificate
  tls-restore                  serve the good certificate again
  block-transport udp|tcp|tls  restart Kamailio without that SIP listener
  unblock-transport udp|tcp|tls
  stop-rpc | start-rpc         restart Kamailio without / with the JSON-RPC listener
USAGE
    exit 2
}

[[ $# -ge 2 ]] || usage
[[ -d $1 && -s $1/lab.env ]] || die "no lab in $1 (lab.env missing)"
RUN_DIR=$(cd "$1" && pwd)
FAULT=$2
shift 2
# shellcheck source=/dev/null
. "$RUN_DIR/lab.env"
LAB_START_TIMEOUT_MS=${LAB_START_TIMEOUT_MS:-5000}
# Labs started before the variants existed have no variant keys: today's lab.
LAB_DB_ENGINE=${LAB_DB_ENGINE:-sqlite} LAB_ACC=${LAB_ACC:-extras} LAB_TRACE=${LAB_TRACE:-sql}
LAB_USRLOC=${LAB_USRLOC:-1} LAB_USRLOC_TIMER=${LAB_USRLOC_TIMER:-5} LAB_RPC=${LAB_RPC:-on}
LAB_AUTH_STORE=${LAB_AUTH_STORE:-plain} LAB_TRUNKS=${LAB_TRUNKS:-dispatcher} LAB_DOMAINS=${LAB_DOMAINS:-1}

need_args() { (($# >= 1)) || die "$FAULT: missing argument"; }
safe_word() { [[ $1 =~ ^[A-Za-z0-9_.+-]+$ ]] || die "$FAULT: invalid name '$1'"; }

restart_kamailio() {
    stop_pids "$RUN_DIR/kamailio.pid"
    start_kamailio || die "Kamailio did not restart; see $RUN_DIR/kamailio.log"
}

swap_cert() {
    local d=$RUN_DIR/tls
    cp "$d/server-$1.pem" "$d/server.pem.new" && mv "$d/server.pem.new" "$d/server.pem"
    cp "$d/server-good.key" "$d/server.key.new" && mv "$d/server.key.new" "$d/server.key"
    if fault_state_has block-tls; then
        return 0
    fi
    # tls.reload re-reads tls.cfg and the files; new connections get the new
    # certificate. Without RPC, restart Kamailio instead.
    if rpc_up && rpc tls.reload 2>/dev/null | grep -q '"result"'; then
        return 0
    fi
    restart_kamailio
}

case $FAULT in
remove-account)
    need_args "$@"
    safe_word "$1"
    [[ $(sql "SELECT count(*) FROM subscriber WHERE username='$1'") != 0 ]] || die "no account $1"
    sql "DELETE FROM subscriber WHERE username='$1'; DELETE FROM dbaliases WHERE username='$1';"
    if rpc_up; then rpc ul.rm "[\"location\",\"$1\"]" >/dev/null 2>&1 || true; fi
    sql "DELETE FROM location WHERE username='$1';"
    ;;
restore-account)
    need_args "$@"
    safe_word "$1"
    seed_account "$1" || die "$1 is not a seeded account"
    sql "DELETE FROM subscriber WHERE username='$1'; DELETE FROM dbaliases WHERE username='$1';
         $(account_sql "$SEED_USER" "$SEED_PASSWORD" "$SEED_NUMBERS" "$SEED_DOMAIN")"
    ;;
duplicate-number)
    (($# >= 2)) || die "duplicate-number: usage USER NUMBER"
    safe_word "$1"
    safe_word "$2"
    [[ $(sql "SELECT count(*) FROM subscriber WHERE username='$1'") != 0 ]] || die "no account $1"
    owner=$(sql "SELECT group_concat(username) FROM dbaliases WHERE alias_username='$2'")
    [[ -n $owner ]] || die "number $2 belongs to no account"
    [[ ,$owner, != *,$1,* ]] || die "number $2 already belongs to $1"
    sql "INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES ('$2','$LAB_DOMAIN','$1','$LAB_DOMAIN')"
    log "number $2 now belongs to $owner and $1"
    ;;
remove-number)
    need_args "$@"
    safe_word "$1"
    if (($# >= 2)); then
        safe_word "$2"
        sql "DELETE FROM dbaliases WHERE alias_username='$1' AND username='$2'"
    else
        sql "DELETE FROM dbaliases WHERE alias_username='$1'"
    fi
    ;;
stop-echo)
    stop_pids "$RUN_DIR/sipp-echo.pid"
    # Wait until the dispatcher's probing marks it inactive, so the next
    # call gets 503 at once (bounded).
    if rpc_up; then
        wait_dispatcher_flags "$LAB_ECHO_URI" "I[PX]" 10000 || log "warning: dispatcher still shows the echo service active"
    fi
    ;;
start-echo)
    [[ -s $RUN_DIR/sipp-echo.pid ]] && kill -0 "$(cat "$RUN_DIR/sipp-echo.pid")" 2>/dev/null && die "echo service already running"
    start_echo || die "cannot start the echo service"
    if rpc_up; then
        wait_dispatcher_flags "$LAB_ECHO_URI" "A[PX]" 10000 || log "warning: dispatcher does not show the echo service active yet"
    fi
    ;;
kill-gateway)
    if [[ -s $RUN_DIR/sipp-gw.pid ]]; then
        pid=$(cat "$RUN_DIR/sipp-gw.pid")
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        rm -f "$RUN_DIR/sipp-gw.pid"
    fi
    # drouting has no probing: the next trunk call times out on gw1 and gw2 (2 s each).
    if rpc_up && [[ ${LAB_TRUNKS:-dispatcher} == dispatcher ]]; then
        wait_dispatcher_flags "$LAB_GW_URI" "I[PX]" 10000 || log "warning: dispatcher still shows gw1 active"
    fi
    ;;
start-gateway)
    [[ -s $RUN_DIR/sipp-gw.pid ]] && kill -0 "$(cat "$RUN_DIR/sipp-gw.pid")" 2>/dev/null && die "gateway already running"
    # The killed SIPp may hold its port for a moment.
    deadline=$(($(now_ms) + 3000))
    while [[ -n $(port_users "$LAB_GW_PORT") ]] && (($(now_ms) < deadline)); do sleep 0.1; done
    start_gateway || die "cannot start the gateway"
    if rpc_up && [[ ${LAB_TRUNKS:-dispatcher} == dispatcher ]]; then
        wait_dispatcher_flags "$LAB_GW_URI" "A[PX]" 10000 || log "warning: dispatcher does not show gw1 active yet"
    fi
    ;;
tls-expired)
    make_expired_cert
    swap_cert expired
    ;;
tls-untrusted)
    make_untrusted_cert
    swap_cert untrusted
    ;;
tls-restore)
    swap_cert good
    ;;
block-transport | unblock-transport)
    need_args "$@"
    case $1 in udp | tcp | tls) ;; *) die "$FAULT: transport must be udp, tcp or tls" ;; esac
    if [[ $FAULT == block-transport ]]; then
        fault_state_has "block-$1" && die "$1 is already blocked"
        fault_state_add "block-$1"
    else
        fault_state_has "block-$1" || die "$1 is not blocked"
        fault_state_del "block-$1"
    fi
    if fault_state_has block-udp && fault_state_has block-tcp && fault_state_has block-tls && ! rpc_up; then
        fault_state_del "block-$1"
        die "cannot block every listener"
    fi
    restart_kamailio
    ;;
stop-rpc | start-rpc)
    [[ ${LAB_RPC:-on} == on ]] ||
        die "$FAULT: this lab runs without a management interface (LAB_RPC=off); RPC faults need LAB_RPC=on"
    if [[ $FAULT == stop-rpc ]]; then
        fault_state_has stop-rpc && die "RPC is already stopped"
        fault_state_add stop-rpc
    else
        fault_state_has stop-rpc || die "RPC is not stopped"
        fault_state_del stop-rpc
    fi
    restart_kamailio
    ;;
*)
    usage
    ;;
esac
log "$FAULT${*:+ $*} done"
