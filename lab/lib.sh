# lab/lib.sh: shared functions of start.sh, stop.sh and fault.sh (sourced, not run).
# Everything here binds to loopback only and every wait is bounded.

LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
KAMAILIO_BIN=${KAMAILIO_BIN:-/usr/sbin/kamailio}
SIPP_BIN=${SIPP_BIN:-/usr/bin/sipp}
SCHEMA_DIR=${SCHEMA_DIR:-/usr/share/kamailio/db_sqlite}

# Seeded accounts: user:password:numbers (first number is the primary one).
LAB_SEED_ACCOUNTS=${LAB_SEED_ACCOUNTS:-"alice:alice-pw-7431:1001,391001 bob:bob-pw-2266:1002 carol:carol-pw-5190:1003 dave:dave-pw-8824:1004 probe1:probe1-pw-3307:1901 probe2:probe2-pw-4418:1902"}

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

# Current time in milliseconds (for bounded waits).
now_ms() { date +%s%3N; }

# Defaults for every setting; the environment overrides them.
lab_defaults() {
    LAB_IP=${LAB_IP:-127.0.0.1}
    LAB_DOMAIN=${LAB_DOMAIN:-$LAB_IP}
    LAB_SIP_PORT=${LAB_SIP_PORT:-5060}
    LAB_TLS_PORT=${LAB_TLS_PORT:-5061}
    LAB_RPC_PORT=${LAB_RPC_PORT:-5071}
    LAB_ECHO_PORT=${LAB_ECHO_PORT:-5090}
    LAB_GW_PORT=${LAB_GW_PORT:-5092}
    LAB_GW2_PORT=${LAB_GW2_PORT:-5094}
    LAB_MEDIA_BASE=${LAB_MEDIA_BASE:-20000}
    LAB_ECHO_NUMBER=${LAB_ECHO_NUMBER:-600}
    LAB_TRUNK_PREFIX=9
    LAB_AUTH=${LAB_AUTH:-403}          # 403 (403 + Warning) or 401 (stock re-challenge)
    LAB_DIGEST_ALGORITHM=${LAB_DIGEST_ALGORITHM:-MD5}   # MD5 or SHA-256
    LAB_START_TIMEOUT_MS=${LAB_START_TIMEOUT_MS:-5000}
}

is_loopback_ipv4() {
    [[ $1 =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
    local o
    for o in "${BASH_REMATCH[@]:1}"; do ((o <= 255)) || return 1; done
}

is_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }

# Prints the sockets bound to PORT (tcp listen or udp), empty when free.
port_users() {
    local port=$1
    ss -Hanu "sport = :$port" 2>/dev/null
    ss -Hlnt "sport = :$port" 2>/dev/null
}

# Echo and gateway media: -rtp_echo also uses port+2 (video).
echo_media_port() { echo "$LAB_MEDIA_BASE"; }
gw_media_port() { echo $((LAB_MEDIA_BASE + 4)); }

all_ports() {
    echo "$LAB_SIP_PORT $LAB_TLS_PORT $LAB_RPC_PORT $LAB_ECHO_PORT $LAB_GW_PORT $LAB_GW2_PORT" \
        "$LAB_MEDIA_BASE $((LAB_MEDIA_BASE + 2)) $((LAB_MEDIA_BASE + 4)) $((LAB_MEDIA_BASE + 6))"
}

# ---------------------------------------------------------------- database

sql() { sqlite3 -cmd ".timeout 3000" "$LAB_DB" "$@"; }

md5hex() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }

# SQL that inserts one seeded account (subscriber row and its numbers).
account_sql() {
    local user=$1 pass=$2 numbers=$3 n
    printf "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES ('%s','%s','%s','%s','%s');\n" \
        "$user" "$LAB_DOMAIN" "$pass" "$(md5hex "$user:$LAB_DOMAIN:$pass")" \
        "$(md5hex "$user@$LAB_DOMAIN:$LAB_DOMAIN:$pass")"
    for n in ${numbers//,/ }; do
        printf "INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES ('%s','%s','%s','%s');\n" \
            "$n" "$LAB_DOMAIN" "$user" "$LAB_DOMAIN"
    done
}

# Looks up a seeded account: sets SEED_USER, SEED_PASSWORD, SEED_NUMBERS.
seed_account() {
    local entry
    for entry in $LAB_SEED_ACCOUNTS; do
        if [[ ${entry%%:*} == "$1" ]]; then
            SEED_USER=${entry%%:*}
            local rest=${entry#*:}
            SEED_PASSWORD=${rest%%:*}
            SEED_NUMBERS=${rest#*:}
            return 0
        fi
    done
    return 1
}

# The Debian schema declares acc/sip_trace columns "DEFAULT '' NOT NULL", which
# rejects rows for locally generated replies (lab-notes pitfall 4): relax them.
relaxed_schema() { sed -E "s/(DEFAULT ('[^']*'|[0-9.]+)) NOT NULL/\1/" "$SCHEMA_DIR/$1-create.sql"; }

create_db() {
    rm -f "$LAB_DB" "$LAB_DB-wal" "$LAB_DB-shm"
    {
        echo "PRAGMA journal_mode = WAL;"
        echo "BEGIN;"
        cat "$SCHEMA_DIR/standard-create.sql" "$SCHEMA_DIR/auth_db-create.sql" \
            "$SCHEMA_DIR/usrloc-create.sql" "$SCHEMA_DIR/alias_db-create.sql" \
            "$SCHEMA_DIR/dispatcher-create.sql"
        relaxed_schema acc
        relaxed_schema siptrace
        local t
        for t in acc missed_calls; do
            for c in src_user src_domain src_ip dst_ouser dst_user dst_domain route; do
                echo "ALTER TABLE $t ADD COLUMN $c VARCHAR(128);"
            done
        done
        for c in callid caller callee dialed route; do
            echo "ALTER TABLE acc_cdrs ADD COLUMN $c VARCHAR(255);"
        done
        local entry user rest
        for entry in $LAB_SEED_ACCOUNTS; do
            user=${entry%%:*}
            rest=${entry#*:}
            account_sql "$user" "${rest%%:*}" "${rest#*:}"
        done
        cat <<EOF
INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description) VALUES
  (1, 'sip:$LAB_IP:$LAB_GW_PORT', 0, 10, 'duid=gw1;name=pstn-gw1', 'trunk gateway 1 (SIPp)'),
  (1, 'sip:$LAB_IP:$LAB_GW2_PORT', 0, 0, 'duid=gw2;name=pstn-gw2', 'trunk gateway 2 (nothing listens)'),
  (2, 'sip:$LAB_IP:$LAB_ECHO_PORT', 0, 0, 'duid=echo;name=echo', 'echo service (SIPp -rtp_echo)');
COMMIT;
EOF
    } | sqlite3 "$LAB_DB" >/dev/null || die "cannot create the database $LAB_DB"
}

# ------------------------------------------------------------ certificates

# EC P-256 keys are fast to make (16 ms); RSA-2048 took up to 0.8 s.
new_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

server_ext() {
    printf 'subjectAltName=IP:%s,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$LAB_IP"
}

# Signs RUN_DIR/tls/$1.csr with the CA in directory $2 for validity $3 ($4).
make_certs() {
    local d=$RUN_DIR/tls
    mkdir -p "$d"
    new_key "$d/ca.key"
    openssl req -x509 -new -key "$d/ca.key" -sha256 -days 30 -subj "/O=dialtone lab/CN=dialtone lab CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$d/ca.pem" 2>/dev/null || die "openssl: cannot make the CA certificate"
    new_key "$d/server-good.key"
    openssl req -new -key "$d/server-good.key" -subj "/O=dialtone lab/CN=$LAB_IP" -out "$d/server.csr" 2>/dev/null
    server_ext >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -sha256 \
        -days 30 -extfile "$d/server.ext" -out "$d/server-good.pem" 2>/dev/null ||
        die "openssl: cannot make the server certificate"
    cp "$d/server-good.pem" "$d/server.pem"
    cp "$d/server-good.key" "$d/server.key"
    cat >"$RUN_DIR/tls.cfg" <<EOF
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $d/server.key
certificate = $d/server.pem

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
EOF
}

# An expired certificate (valid January 2020) from the lab CA, same names.
make_expired_cert() {
    local d=$RUN_DIR/tls c=$RUN_DIR/tls/expired-ca
    [[ -s $d/server-expired.pem ]] && return 0
    rm -rf "$c" && mkdir -p "$c" && : >"$c/index.txt" && echo 1000 >"$c/serial"
    cat >"$c/ca.cnf" <<EOF
[ca]
default_ca = lab
[lab]
database = $c/index.txt
new_certs_dir = $c
serial = $c/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
organizationName = optional
EOF
    openssl ca -batch -config "$c/ca.cnf" -cert "$d/ca.pem" -keyfile "$d/ca.key" -in "$d/server.csr" \
        -startdate 20200101000000Z -enddate 20200201000000Z -extfile "$d/server.ext" -notext \
        -out "$d/server-expired.pem" >/dev/null 2>&1 || die "openssl: cannot make the expired certificate"
}

# A certificate with the right names, signed by a CA nobody trusts.
make_untrusted_cert() {
    local d=$RUN_DIR/tls
    [[ -s $d/server-untrusted.pem ]] && return 0
    new_key "$d/rogue-ca.key"
    openssl req -x509 -new -key "$d/rogue-ca.key" -sha256 -days 30 -subj "/O=Unknown/CN=Unknown rogue CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$d/rogue-ca.pem" 2>/dev/null
    openssl x509 -req -in "$d/server.csr" -CA "$d/rogue-ca.pem" -CAkey "$d/rogue-ca.key" -CAcreateserial \
        -sha256 -days 30 -extfile "$d/server.ext" -out "$d/server-untrusted.pem" 2>/dev/null ||
        die "openssl: cannot make the untrusted certificate"
}

# ---------------------------------------------------------------- kamailio

# Transports and services switched off by faults (one word per line).
fault_state_has() { [[ -f $RUN_DIR/faults ]] && grep -qx "$1" "$RUN_DIR/faults"; }
fault_state_add() { fault_state_has "$1" || echo "$1" >>"$RUN_DIR/faults"; }
fault_state_del() {
    [[ -f $RUN_DIR/faults ]] || return 0
    grep -vx "$1" "$RUN_DIR/faults" >"$RUN_DIR/faults.tmp" || true
    mv "$RUN_DIR/faults.tmp" "$RUN_DIR/faults"
}

write_kamailio_cfg() {
    local cfg=$RUN_DIR/kamailio.cfg secret
    secret=$(cat "$RUN_DIR/auth.secret")
    {
        echo "#!KAMAILIO"
        echo "# generated by lab/start.sh for $RUN_DIR; body: $LAB_DIR/kamailio.cfg"
        echo "#!define LAB_IP \"$LAB_IP\""
        echo "#!define SIP_PORT $LAB_SIP_PORT"
        echo "#!define TLS_PORT $LAB_TLS_PORT"
        echo "#!define RPC_PORT $LAB_RPC_PORT"
        echo "#!define DBURL \"sqlite://$LAB_DB\""
        echo "#!define SQLCON \"lab=>sqlite://$LAB_DB\""
        echo "#!define TLSCFG \"$RUN_DIR/tls.cfg\""
        echo "#!define ECHO_NUMBER \"$LAB_ECHO_NUMBER\""
        echo "#!define AUTH_SECRET \"$secret\""
        [[ $LAB_AUTH == 401 ]] && echo "#!define WITH_REAUTH_401"
        [[ $LAB_DIGEST_ALGORITHM == SHA-256 ]] && echo "#!define WITH_SHA256"
        fault_state_has block-udp || echo "listen=udp:$LAB_IP:$LAB_SIP_PORT"
        fault_state_has block-tcp || echo "listen=tcp:$LAB_IP:$LAB_SIP_PORT"
        if ! fault_state_has block-tls; then
            echo "#!define WITH_TLS"
            echo "listen=tls:$LAB_IP:$LAB_TLS_PORT"
        fi
        fault_state_has stop-rpc || echo "listen=tcp:$LAB_IP:$LAB_RPC_PORT"
        # "uri==myself" compares host and port, and a URI without a port means
        # 5060 (lab-notes pitfall 8): alias the default ports, never port-less.
        echo "alias=$LAB_IP:5060"
        echo "alias=localhost:5060"
        echo "alias=localhost:$LAB_SIP_PORT"
        [[ $LAB_DOMAIN != "$LAB_IP" ]] && echo "alias=$LAB_DOMAIN:5060" && echo "alias=$LAB_DOMAIN:$LAB_SIP_PORT"
        cat "$LAB_DIR/kamailio.cfg"
    } >"$cfg"
}

rpc() {
    local method=$1 params=${2:-[]}
    curl -sS --max-time "${RPC_TIMEOUT:-2}" -X POST \
        --data "{\"jsonrpc\":\"2.0\",\"method\":\"$method\",\"params\":$params,\"id\":1}" \
        "http://$LAB_IP:$LAB_RPC_PORT/RPC"
}

# Waits until Kamailio answers: RPC core.uptime, or (RPC down) its SIP UDP/TCP
# listener is bound. Bounded by LAB_START_TIMEOUT_MS.
wait_kamailio_ready() {
    local deadline=$(($(now_ms) + LAB_START_TIMEOUT_MS)) pid
    pid=$(cat "$RUN_DIR/kamailio.pid")
    while (($(now_ms) < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if fault_state_has stop-rpc; then
            if [[ -n $(ss -Hlnt "sport = :$LAB_TLS_PORT" 2>/dev/null)$(ss -Hanu "sport = :$LAB_SIP_PORT" 2>/dev/null)$(ss -Hlnt "sport = :$LAB_SIP_PORT" 2>/dev/null) ]]; then
                sleep 0.2
                return 0
            fi
        elif RPC_TIMEOUT=0.5 rpc core.uptime 2>/dev/null | grep -q '"uptime"'; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

start_kamailio() {
    write_kamailio_cfg
    mkdir -p "$RUN_DIR/kamailio-rt"
    # setsid: Kamailio and its children get their own process group, which
    # stop.sh signals as a whole. Every fd is redirected so a caller reading
    # start.sh's output is not held open by Kamailio.
    setsid "$KAMAILIO_BIN" -f "$RUN_DIR/kamailio.cfg" -DD -E -m 48 -M 8 -Y "$RUN_DIR/kamailio-rt" \
        </dev/null >>"$RUN_DIR/kamailio.log" 2>&1 &
    echo $! >"$RUN_DIR/kamailio.pid"
    if ! wait_kamailio_ready; then
        log "Kamailio did not become ready within ${LAB_START_TIMEOUT_MS} ms; last lines of $RUN_DIR/kamailio.log:"
        tail -n 15 "$RUN_DIR/kamailio.log" >&2
        return 1
    fi
}

# Sends SIGTERM to the process group of each pid file given, then SIGKILL
# after a bound. All at once: one after another took 5 s (lab-notes 14).
stop_pids() {
    local f pid pids=()
    for f in "$@"; do
        [[ -s $f ]] || continue
        pid=$(cat "$f")
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # The group too: Kamailio's children outlive a main process that was killed or crashed.
        if kill -0 "$pid" 2>/dev/null || pgrep -g "$pid" >/dev/null 2>&1; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    local deadline=$(($(now_ms) + ${LAB_STOP_TIMEOUT_MS:-3000})) alive
    while :; do
        alive=()
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null || pgrep -g "$pid" >/dev/null 2>&1; then alive+=("$pid"); fi
        done
        ((${#alive[@]} == 0)) && break
        if (($(now_ms) >= deadline)); then
            for pid in "${alive[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
            sleep 0.1
            break
        fi
        sleep 0.05
    done
    for f in "$@"; do rm -f "$f"; done
}

# ------------------------------------------------------------------- sipp

# start_sipp NAME SCENARIO PORT MEDIA_PORT: a SIPp UAS with RTP echo.
start_sipp() {
    local name=$1 scenario=$2 port=$3 mport=$4 out pid
    out=$RUN_DIR/sipp-$name.out
    # Run from RUN_DIR: SIPp writes its error log into the working directory.
    # setsid so the whole group can be signalled; -bg prints "PID=[n]".
    (cd "$RUN_DIR" && setsid "$SIPP_BIN" -sf "$LAB_DIR/sipp/$scenario" -t u1 \
        -i "$LAB_IP" -mi "$LAB_IP" -p "$port" -mp "$mport" -rtp_echo -bg -nostdin \
        -trace_err -error_file "$RUN_DIR/sipp-$name-errors.log" \
        </dev/null >"$out" 2>&1) || true
    pid=$(sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' "$out" | head -n1)
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        log "SIPp $name did not start on $LAB_IP:$port:"
        cat "$out" >&2
        return 1
    fi
    echo "$pid" >"$RUN_DIR/sipp-$name.pid"
}

start_echo() { start_sipp echo echo_uas.xml "$LAB_ECHO_PORT" "$(echo_media_port)"; }
start_gateway() { start_sipp gw gateway_uas.xml "$LAB_GW_PORT" "$(gw_media_port)"; }

# Waits (bounded) until dispatcher.list shows DEST with a flag matching REGEX.
wait_dispatcher_flags() {
    local dest=$1 regex=$2 timeout_ms=${3:-10000} deadline
    deadline=$(($(now_ms) + timeout_ms))
    while (($(now_ms) < deadline)); do
        if rpc dispatcher.list 2>/dev/null | tr -d '\n\t ' |
            grep -Eq "\"URI\":\"$dest\",\"FLAGS\":\"$regex\""; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}
