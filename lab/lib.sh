# lab/lib.sh: shared functions of start.sh, stop.sh and fault.sh (sourced, not run).
# Everything here binds to loopback only and every wait is bounded.

LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
KAMAILIO_BIN=${KAMAILIO_BIN:-/usr/sbin/kamailio}
SIPP_BIN=${SIPP_BIN:-/usr/bin/sipp}
SCHEMA_DIR=${SCHEMA_DIR:-/usr/share/kamailio/db_sqlite}
MYSQL_SCHEMA_DIR=${MYSQL_SCHEMA_DIR:-/usr/share/kamailio/mysql}

# Seeded accounts: user:password:numbers (first number is the primary one).
LAB_SEED_ACCOUNTS=${LAB_SEED_ACCOUNTS:-"alice:alice-pw-7431:1001,391001 bob:bob-pw-2266:1002 carol:carol-pw-5190:1003 dave:dave-pw-8824:1004 probe1:probe1-pw-3307:1901 probe2:probe2-pw-4418:1902"}
# With LAB_DOMAINS=2: accounts of the second domain (LAB_DOMAIN2).
LAB_SEED_ACCOUNTS2=${LAB_SEED_ACCOUNTS2:-"erin:erin-pw-6612:2001"}

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
    # Variants: how the server is built (see "Variants" in lab/README.md).
    LAB_DB_ENGINE=${LAB_DB_ENGINE:-sqlite}     # sqlite | mysql (needs LAB_MYSQL_ADMIN_URL)
    LAB_ACC=${LAB_ACC:-extras}                 # extras | stock | common | renamed
    LAB_TRACE=${LAB_TRACE:-sql}                # sql | hep | none
    LAB_HEP_ADDR=${LAB_HEP_ADDR:-127.0.0.1:9060}
    LAB_USRLOC=${LAB_USRLOC:-1}                # usrloc db_mode: 1 | 0 | 2
    LAB_USRLOC_TIMER=${LAB_USRLOC_TIMER:-5}    # usrloc timer_interval (s), flush period of db_mode 2
    LAB_RPC=${LAB_RPC:-on}                     # on | off
    LAB_AUTH_STORE=${LAB_AUTH_STORE:-plain}    # plain | ha1
    LAB_TRUNKS=${LAB_TRUNKS:-dispatcher}       # dispatcher | drouting
    LAB_DOMAINS=${LAB_DOMAINS:-1}              # 1 | 2 (domain table, use_domain=1, LAB_DOMAIN2)
    LAB_DOMAIN2=${LAB_DOMAIN2:-second.dialtone.invalid}
}

# Every seeded account as user:password:numbers:domain, one per line.
seed_entries() {
    local entry
    for entry in $LAB_SEED_ACCOUNTS; do echo "$entry:$LAB_DOMAIN"; done
    if [[ ${LAB_DOMAINS:-1} == 2 ]]; then
        for entry in $LAB_SEED_ACCOUNTS2; do echo "$entry:$LAB_DOMAIN2"; done
    fi
}

# Checks the variant settings; dies with a message naming the variable.
check_variants() {
    [[ $LAB_DB_ENGINE == sqlite || $LAB_DB_ENGINE == mysql ]] || die "LAB_DB_ENGINE must be sqlite or mysql"
    [[ $LAB_ACC =~ ^(extras|stock|common|renamed)$ ]] || die "LAB_ACC must be extras, stock, common or renamed"
    [[ $LAB_TRACE =~ ^(sql|hep|none)$ ]] || die "LAB_TRACE must be sql, hep or none"
    if [[ $LAB_TRACE == hep ]]; then
        local hep_ip=${LAB_HEP_ADDR%:*} hep_port=${LAB_HEP_ADDR##*:}
        [[ $LAB_HEP_ADDR == *:* ]] && is_loopback_ipv4 "$hep_ip" && is_port "$hep_port" ||
            die "LAB_HEP_ADDR=$LAB_HEP_ADDR refused: it must be a loopback IPv4 address and a port (127.0.0.1:9060)"
    fi
    [[ $LAB_USRLOC =~ ^[012]$ ]] || die "LAB_USRLOC must be 0, 1 or 2 (usrloc db_mode)"
    [[ $LAB_USRLOC_TIMER =~ ^[1-9][0-9]{0,3}$ ]] || die "LAB_USRLOC_TIMER must be a number of seconds"
    [[ $LAB_RPC == on || $LAB_RPC == off ]] || die "LAB_RPC must be on or off"
    [[ $LAB_AUTH_STORE == plain || $LAB_AUTH_STORE == ha1 ]] || die "LAB_AUTH_STORE must be plain or ha1"
    [[ $LAB_TRUNKS == dispatcher || $LAB_TRUNKS == drouting ]] || die "LAB_TRUNKS must be dispatcher or drouting"
    [[ $LAB_DOMAINS == 1 || $LAB_DOMAINS == 2 ]] || die "LAB_DOMAINS must be 1 or 2"
    if [[ $LAB_DOMAINS == 2 ]]; then
        [[ $LAB_DOMAIN2 =~ ^[a-z0-9.-]+$ && $LAB_DOMAIN2 != "$LAB_DOMAIN" ]] ||
            die "LAB_DOMAIN2=$LAB_DOMAIN2 is not a valid second domain"
    fi
    if [[ $LAB_DB_ENGINE == mysql ]]; then
        [[ -n ${LAB_MYSQL_ADMIN_URL:-} ]] ||
            die "LAB_DB_ENGINE=mysql needs LAB_MYSQL_ADMIN_URL (mysql://root@127.0.0.1:53306, see scripts/mariadb.sh)"
        parse_mysql_admin_url "$LAB_MYSQL_ADMIN_URL"
        command -v mysql >/dev/null || die "mysql not found (install mariadb-client)"
        [[ -s $MYSQL_SCHEMA_DIR/acc-create.sql ]] || die "$MYSQL_SCHEMA_DIR missing (install kamailio-mysql-modules)"
    fi
}

# Splits mysql://USER[:PASSWORD]@HOST[:PORT][/] (TCP, loopback only) into MYSQL_ADMIN_*.
parse_mysql_admin_url() {
    local re='^mysql://([A-Za-z0-9_.-]+)(:([^@/]*))?@([A-Za-z0-9.-]+)(:([0-9]+))?/?$'
    [[ $1 =~ $re ]] || die "LAB_MYSQL_ADMIN_URL is not mysql://USER[:PASSWORD]@HOST[:PORT] (TCP only)"
    MYSQL_ADMIN_USER=${BASH_REMATCH[1]}
    MYSQL_ADMIN_PASSWORD=${BASH_REMATCH[3]}
    MYSQL_HOST=${BASH_REMATCH[4]}
    MYSQL_PORT=${BASH_REMATCH[6]:-3306}
    [[ $MYSQL_HOST == localhost ]] && MYSQL_HOST=127.0.0.1
    is_loopback_ipv4 "$MYSQL_HOST" || die "LAB_MYSQL_ADMIN_URL refused: the database server must be on loopback (127.0.0.0/8)"
    is_port "$MYSQL_PORT" || die "LAB_MYSQL_ADMIN_URL: bad port $MYSQL_PORT"
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

# Runs one SQL text on the lab database: sqlite3 (busy timeout) or, for the
# mysql variant, the mysql client with the lab user's option file. Rows on
# lines; columns separated by | (sqlite3) or a tab (mysql).
sql() {
    if [[ ${LAB_DB_ENGINE:-sqlite} == mysql ]]; then
        mysql --defaults-file="$RUN_DIR/mysql-lab.cnf" -N -B -r -e "$1"
    else
        sqlite3 -cmd ".timeout 3000" "$LAB_DB" "$1"
    fi
}

# The MariaDB/MySQL server's admin account (from LAB_MYSQL_ADMIN_URL, saved at start).
mysql_admin() { mysql --defaults-file="$RUN_DIR/mysql-admin.cnf" -N -B "$@"; }

md5hex() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }
sha256hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# SQL that inserts one seeded account (subscriber row and its numbers). With
# LAB_AUTH_STORE=ha1 the password column stays empty and only ha1/ha1b hold
# the secret (SHA-256 hashes when the lab challenges with SHA-256).
account_sql() {
    local user=$1 pass=$2 numbers=$3 dom=${4:-$LAB_DOMAIN} n hash=md5hex pwcol=$2
    if [[ ${LAB_AUTH_STORE:-plain} == ha1 ]]; then
        pwcol=""
        [[ ${LAB_DIGEST_ALGORITHM:-MD5} == SHA-256 ]] && hash=sha256hex
    fi
    printf "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES ('%s','%s','%s','%s','%s');\n" \
        "$user" "$dom" "$pwcol" "$($hash "$user:$dom:$pass")" \
        "$($hash "$user@$dom:$dom:$pass")"
    for n in ${numbers//,/ }; do
        printf "INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES ('%s','%s','%s','%s');\n" \
            "$n" "$dom" "$user" "$dom"
    done
}

# Looks up a seeded account: sets SEED_USER, SEED_PASSWORD, SEED_NUMBERS, SEED_DOMAIN.
seed_account() {
    local entry rest
    for entry in $(seed_entries); do
        if [[ ${entry%%:*} == "$1" ]]; then
            SEED_USER=${entry%%:*}
            rest=${entry#*:}
            SEED_PASSWORD=${rest%%:*}
            rest=${rest#*:}
            SEED_NUMBERS=${rest%%:*}
            SEED_DOMAIN=${rest#*:}
            return 0
        fi
    done
    return 1
}

# The Debian schema declares acc/sip_trace columns "DEFAULT '' NOT NULL", which
# rejects rows for locally generated replies (lab-notes pitfall 4): relax them.
relax() { sed -E "s/(DEFAULT ('[^']*'|[0-9.]+)) NOT NULL/\1/"; }

# Prints the statements of schema FILE that concern the tables named after it
# (CREATE TABLE, CREATE INDEX ... ON, the version row); statements are
# separated by blank lines in the Debian files of both engines.
schema_tables() {
    local file=$1
    shift
    awk -v want=" $* " 'BEGIN { RS = ""; ORS = "\n\n" }
    {
        s = $0; gsub(/`/, "", s); t = ""
        if (match(s, /CREATE TABLE [A-Za-z0-9_]+/)) t = substr(s, RSTART + 13, RLENGTH - 13)
        else if (match(s, / ON [A-Za-z0-9_]+/)) t = substr(s, RSTART + 4, RLENGTH - 4)
        else if (match(s, /values \(.[A-Za-z0-9_]+/)) t = substr(s, RSTART + 9, RLENGTH - 9)
        if (t != "" && index(want, " " t " ")) print $0
    }' "$file"
}

# Extra columns of acc and missed_calls for LAB_ACC (stock: none).
acc_extra_columns() {
    case $LAB_ACC in
    extras) echo "src_user src_domain src_ip dst_ouser dst_user dst_domain route" ;;
    common) echo "src_user src_domain src_ip dst_ouser dst_user dst_domain" ;;
    renamed) echo "orig_user term_user digits" ;;
    esac
}

# The schema of the variant, from the engine's Debian files in directory $1.
schema_sql() {
    local dir=$1 t c
    cat "$dir/standard-create.sql" "$dir/auth_db-create.sql" "$dir/usrloc-create.sql" \
        "$dir/alias_db-create.sql" "$dir/dispatcher-create.sql"
    case $LAB_ACC in
    extras) relax <"$dir/acc-create.sql" ;;
    stock) schema_tables "$dir/acc-create.sql" acc | relax ;;
    *) schema_tables "$dir/acc-create.sql" acc missed_calls | relax ;;
    esac
    if [[ $LAB_TRACE == sql ]]; then relax <"$dir/siptrace-create.sql"; fi
    if [[ $LAB_TRUNKS == drouting ]]; then cat "$dir/drouting-create.sql"; fi
    if [[ $LAB_DOMAINS == 2 ]]; then cat "$dir/domain-create.sql"; fi
    if [[ $LAB_ACC != stock ]]; then
        for t in acc missed_calls; do
            add_columns "$t" 128 $(acc_extra_columns)
        done
    fi
    if [[ $LAB_ACC == extras ]]; then
        add_columns acc_cdrs 255 callid caller callee dialed route
    fi
}

# add_columns TABLE SIZE COLUMN...: nullable VARCHAR(SIZE) columns. SQLite
# takes one column per ALTER; MySQL gets one ALTER (each one costs a table
# rebuild there).
add_columns() {
    local t=$1 size=$2 c sep=""
    shift 2
    if [[ $LAB_DB_ENGINE == mysql ]]; then
        printf 'ALTER TABLE %s' "$t"
        for c in "$@"; do printf '%s ADD COLUMN %s VARCHAR(%s)' "$sep" "$c" "$size" && sep=,; done
        echo ";"
    else
        for c in "$@"; do echo "ALTER TABLE $t ADD COLUMN $c VARCHAR($size);"; done
    fi
}

# Seeded rows: accounts, numbers, the echo service and the trunk.
seed_sql() {
    local entry
    for entry in $(seed_entries); do
        seed_account "${entry%%:*}"
        account_sql "$SEED_USER" "$SEED_PASSWORD" "$SEED_NUMBERS" "$SEED_DOMAIN"
    done
    if [[ $LAB_DOMAINS == 2 ]]; then
        echo "INSERT INTO domain (domain, did) VALUES ('$LAB_DOMAIN', '$LAB_DOMAIN'), ('$LAB_DOMAIN2', '$LAB_DOMAIN2');"
    fi
    echo "INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description) VALUES
  (2, 'sip:$LAB_IP:$LAB_ECHO_PORT', 0, 0, 'duid=echo;name=echo', 'echo service (SIPp -rtp_echo)');"
    if [[ $LAB_TRUNKS == drouting ]]; then
        # strip 1: the gateway gets the number without the trunk prefix.
        cat <<EOS
INSERT INTO dr_gateways (gwid, type, address, strip, pri_prefix, attrs, description) VALUES
  (1, 0, '$LAB_IP:$LAB_GW_PORT', 1, '', 'name=pstn-gw1', 'trunk gateway 1 (SIPp)'),
  (2, 0, '$LAB_IP:$LAB_GW2_PORT', 1, '', 'name=pstn-gw2', 'trunk gateway 2 (nothing listens)');
INSERT INTO dr_rules (ruleid, groupid, prefix, timerec, priority, routeid, gwlist, description) VALUES
  (1, '0', '$LAB_TRUNK_PREFIX', '', 0, '', '1,2', 'outgoing trunk: gw1, then gw2');
EOS
    else
        echo "INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description) VALUES
  (1, 'sip:$LAB_IP:$LAB_GW_PORT', 0, 10, 'duid=gw1;name=pstn-gw1', 'trunk gateway 1 (SIPp)'),
  (1, 'sip:$LAB_IP:$LAB_GW2_PORT', 0, 0, 'duid=gw2;name=pstn-gw2', 'trunk gateway 2 (nothing listens)');"
    fi
}

# Kamailio's database URL (written into kamailio.cfg and lab.env).
db_url() {
    if [[ $LAB_DB_ENGINE == mysql ]]; then
        echo "mysql://$MYSQL_LAB_DB:$(cat "$RUN_DIR/mysql-lab.pw")@$MYSQL_HOST:$MYSQL_PORT/$MYSQL_LAB_DB"
    else
        echo "sqlite://$LAB_DB"
    fi
}

create_db() {
    if [[ $LAB_DB_ENGINE == mysql ]]; then
        create_db_mysql
        return
    fi
    rm -f "$LAB_DB" "$LAB_DB-wal" "$LAB_DB-shm"
    {
        echo "PRAGMA journal_mode = WAL;"
        echo "BEGIN;"
        schema_sql "$SCHEMA_DIR"
        seed_sql
        echo "COMMIT;"
    } | sqlite3 "$LAB_DB" >/dev/null || die "cannot create the database $LAB_DB"
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# A fresh database and user on the MariaDB/MySQL server of LAB_MYSQL_ADMIN_URL:
# both named lab_<sipport>_<random>; the name is kept in RUN_DIR/mysql.db for
# stop.sh, which drops them. Option files (mode 600) keep passwords off
# command lines.
create_db_mysql() {
    local pw
    MYSQL_LAB_DB=lab_${LAB_SIP_PORT}_$(random_hex 4)
    pw=$(random_hex 12)
    (
        umask 077
        printf '[client]\nuser=%s\nhost=%s\nport=%s\nprotocol=tcp\nconnect-timeout=5\n' \
            "$MYSQL_ADMIN_USER" "$MYSQL_HOST" "$MYSQL_PORT" >"$RUN_DIR/mysql-admin.cnf"
        [[ -n $MYSQL_ADMIN_PASSWORD ]] && printf 'password=%s\n' "$MYSQL_ADMIN_PASSWORD" >>"$RUN_DIR/mysql-admin.cnf"
        printf '[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\nprotocol=tcp\nconnect-timeout=5\ndatabase=%s\n' \
            "$MYSQL_LAB_DB" "$pw" "$MYSQL_HOST" "$MYSQL_PORT" "$MYSQL_LAB_DB" >"$RUN_DIR/mysql-lab.cnf"
        printf '%s' "$pw" >"$RUN_DIR/mysql-lab.pw"
    )
    echo "$MYSQL_LAB_DB" >"$RUN_DIR/mysql.db"
    mysql_admin -e "CREATE DATABASE \`$MYSQL_LAB_DB\` CHARACTER SET utf8mb4;
        CREATE USER '$MYSQL_LAB_DB'@'127.0.0.1' IDENTIFIED BY '$pw';
        CREATE USER '$MYSQL_LAB_DB'@'localhost' IDENTIFIED BY '$pw';
        GRANT ALL PRIVILEGES ON \`$MYSQL_LAB_DB\`.* TO '$MYSQL_LAB_DB'@'127.0.0.1';
        GRANT ALL PRIVILEGES ON \`$MYSQL_LAB_DB\`.* TO '$MYSQL_LAB_DB'@'localhost';" ||
        { drop_db_mysql; die "cannot create database $MYSQL_LAB_DB on $MYSQL_HOST:$MYSQL_PORT (LAB_MYSQL_ADMIN_URL)"; }
    { schema_sql "$MYSQL_SCHEMA_DIR" && seed_sql; } | mysql --defaults-file="$RUN_DIR/mysql-lab.cnf" ||
        { drop_db_mysql; die "cannot load the schema into $MYSQL_LAB_DB"; }
}

# Drops the lab's MariaDB/MySQL database and user, if it has them.
drop_db_mysql() {
    [[ -s $RUN_DIR/mysql.db && -s $RUN_DIR/mysql-admin.cnf ]] || return 0
    local name
    name=$(cat "$RUN_DIR/mysql.db")
    [[ $name =~ ^lab_[0-9]+_[0-9a-f]+$ ]] || return 0
    mysql_admin -e "DROP DATABASE IF EXISTS \`$name\`;
        DROP USER IF EXISTS '$name'@'127.0.0.1', '$name'@'localhost';" ||
        { log "warning: could not drop database $name"; return 1; }
    rm -f "$RUN_DIR/mysql.db"
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
        echo "#!define DBURL \"$LAB_DB_URL\""
        if [[ $LAB_DB_ENGINE == mysql ]]; then
            echo "#!define WITH_MYSQL"
        else
            echo "#!define WITH_SQLITE"
            echo "#!define SQLCON \"lab=>$LAB_DB_URL\""
        fi
        echo "#!define ACC_$(echo "$LAB_ACC" | tr '[:lower:]' '[:upper:]')"
        case $LAB_TRACE in
        sql) echo "#!define TRACE_SQL" ;;
        hep) echo "#!define TRACE_HEP" && echo "#!define HEP_URI \"sip:$LAB_HEP_ADDR\"" ;;
        esac
        echo "#!define USRLOC_DB_MODE $LAB_USRLOC"
        echo "#!define USRLOC_TIMER $LAB_USRLOC_TIMER"
        [[ $LAB_AUTH_STORE == ha1 ]] && echo "#!define AUTH_HA1"
        [[ $LAB_TRUNKS == drouting ]] && echo "#!define TRUNKS_DROUTING"
        [[ $LAB_RPC == on ]] && echo "#!define WITH_RPC"
        [[ $LAB_DOMAINS == 2 ]] && echo "#!define WITH_DOMAINS" && echo "#!define USE_DOMAIN 1"
        [[ $LAB_DOMAINS == 2 ]] || echo "#!define USE_DOMAIN 0"
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
        [[ $LAB_RPC == on ]] && ! fault_state_has stop-rpc && echo "listen=tcp:$LAB_IP:$LAB_RPC_PORT"
        # "uri==myself" compares host and port, and a URI without a port means
        # 5060 (lab-notes pitfall 8): alias the default ports, never port-less.
        echo "alias=$LAB_IP:5060"
        echo "alias=localhost:5060"
        echo "alias=localhost:$LAB_SIP_PORT"
        [[ $LAB_DOMAIN != "$LAB_IP" ]] && echo "alias=$LAB_DOMAIN:5060" && echo "alias=$LAB_DOMAIN:$LAB_SIP_PORT"
        [[ $LAB_DOMAINS == 2 ]] && echo "alias=$LAB_DOMAIN2:5060" && echo "alias=$LAB_DOMAIN2:$LAB_SIP_PORT"
        cat "$LAB_DIR/kamailio.cfg"
    } >"$cfg"
}

rpc() {
    local method=$1 params=${2:-[]}
    curl -sS --max-time "${RPC_TIMEOUT:-2}" -X POST \
        --data "{\"jsonrpc\":\"2.0\",\"method\":\"$method\",\"params\":$params,\"id\":1}" \
        "http://$LAB_IP:$LAB_RPC_PORT/RPC"
}

# The management interface is served (variant on, not stopped by a fault).
rpc_up() { [[ ${LAB_RPC:-on} == on ]] && ! fault_state_has stop-rpc; }

# Waits until Kamailio answers: RPC core.uptime; without RPC a SIP OPTIONS
# (sipsak) over UDP, or, with UDP blocked or no sipsak, its listeners being
# bound. Bounded by LAB_START_TIMEOUT_MS.
wait_kamailio_ready() {
    local deadline=$(($(now_ms) + LAB_START_TIMEOUT_MS)) pid
    pid=$(cat "$RUN_DIR/kamailio.pid")
    while (($(now_ms) < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if rpc_up; then
            RPC_TIMEOUT=0.5 rpc core.uptime 2>/dev/null | grep -q '"uptime"' && kamailio_settled "$pid" && return 0
        elif ! fault_state_has block-udp && command -v sipsak >/dev/null; then
            timeout 1 sipsak -s "sip:$LAB_IP:$LAB_SIP_PORT" >/dev/null 2>&1 && kamailio_settled "$pid" && return 0
        elif [[ -n $(ss -Hlnt "sport = :$LAB_TLS_PORT" 2>/dev/null)$(ss -Hanu "sport = :$LAB_SIP_PORT" 2>/dev/null)$(ss -Hlnt "sport = :$LAB_SIP_PORT" 2>/dev/null) ]]; then
            sleep 0.2
            kamailio_settled "$pid" && return 0
        fi
        sleep 0.05
    done
    return 1
}

# Ready is not enough: Kamailio 5.6 with OpenSSL 3 now and then aborts in a TLS
# child just after its main process answered (CI saw a lab whose TLS port
# refused the first probe). So every stream listener the config asks for must be
# listening, and the main process still alive a moment later.
kamailio_settled() {
    local pid=$1 port
    local ports=()
    fault_state_has block-tcp || ports+=("$LAB_SIP_PORT")
    fault_state_has block-tls || ports+=("$LAB_TLS_PORT")
    sleep 0.25
    kill -0 "$pid" 2>/dev/null || return 1
    for port in "${ports[@]}"; do
        [[ -n $(ss -Hlnt "src $LAB_IP:$port" 2>/dev/null) ]] || return 1
    done
    return 0
}

start_kamailio() {
    write_kamailio_cfg
    mkdir -p "$RUN_DIR/kamailio-rt"
    # setsid: Kamailio and its children get their own process group, which
    # stop.sh signals as a whole. Every fd is redirected so a caller reading
    # start.sh's output is not held open by Kamailio.
    # Kamailio 5.6 with OpenSSL 3 occasionally aborts in its TLS module while starting (a
    # restart by fault.sh included): what is left is stopped and the start tried again.
    local try
    for try in 1 2 3; do
        setsid "$KAMAILIO_BIN" -f "$RUN_DIR/kamailio.cfg" -DD -E -m 48 -M 8 -Y "$RUN_DIR/kamailio-rt" \
            </dev/null >>"$RUN_DIR/kamailio.log" 2>&1 &
        echo $! >"$RUN_DIR/kamailio.pid"
        wait_kamailio_ready && return 0
        log "Kamailio did not become ready within ${LAB_START_TIMEOUT_MS} ms (try $try of 3); last lines of $RUN_DIR/kamailio.log:"
        tail -n 15 "$RUN_DIR/kamailio.log" >&2
        stop_pids "$RUN_DIR/kamailio.pid"
    done
    return 1
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
