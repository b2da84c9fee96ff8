#!/usr/bin/env bash
# Starts (or reuses) a throw-away MariaDB server on loopback for the test suite and the lab's mysql variant.
# Usage: scripts/mariadb.sh start|stop|url   (MARIADB_DIR and MARIADB_PORT override the defaults)
# `start` and `url` print the admin URL, mysql://root@127.0.0.1:PORT (root without a password,
# loopback only); lab/start.sh takes it as LAB_MYSQL_ADMIN_URL, the tests as DIALTONE_TEST_MYSQL_URL.
set -euo pipefail
MARIADB_DIR=${MARIADB_DIR:-/var/tmp/dialtone-mariadb}
MARIADB_PORT=${MARIADB_PORT:-53306}
SOCK=$MARIADB_DIR/mysqld.sock
# As root the server runs as the mysql user; otherwise as the caller.
USER_OPT=(); [ "$(id -u)" = 0 ] && USER_OPT=(--user=mysql)
url() { echo "mysql://root@127.0.0.1:${MARIADB_PORT}"; }
die() { echo "mariadb.sh: $*" >&2; exit 1; }
client() { mariadb --no-defaults --protocol=socket -S "$SOCK" -u root "$@"; }
alive() { [ -S "$SOCK" ] && client -N -B -e "SELECT 1" >/dev/null 2>&1; }
case "${1:-start}" in
  start)
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] ||
      die "MariaDB is not installed (apt-get install mariadb-server mariadb-client)"
    PATH=$PATH:/usr/sbin
    if ! [ -d "$MARIADB_DIR/data/mysql" ]; then
      mkdir -p "$MARIADB_DIR/data"
      [ "$(id -u)" = 0 ] && chown -R mysql:mysql "$MARIADB_DIR"
      mariadb-install-db --no-defaults "${USER_OPT[@]}" --datadir="$MARIADB_DIR/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$MARIADB_DIR/install.log" 2>&1 ||
        die "mariadb-install-db failed; see $MARIADB_DIR/install.log"
    fi
    if ! alive; then
      # --no-defaults: nothing from /etc/mysql (no systemd service, no port 3306).
      setsid mariadbd --no-defaults "${USER_OPT[@]}" --datadir="$MARIADB_DIR/data" \
        --bind-address=127.0.0.1 --port="$MARIADB_PORT" --socket="$SOCK" \
        --pid-file="$MARIADB_DIR/mariadbd.pid" --log-error="$MARIADB_DIR/server.log" \
        --skip-name-resolve --max-connections=500 --innodb-buffer-pool-size=64M \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --skip-log-bin \
        --innodb-flush-method=nosync --sync-frm=0 \
        </dev/null >/dev/null 2>&1 &
      for _ in $(seq 1 150); do alive && break; sleep 0.2; done
      alive || die "MariaDB did not start within 30 s; see $MARIADB_DIR/server.log"
      # Root over TCP from loopback, without a password (the server listens on 127.0.0.1 only).
      client -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
                 GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    fi
    url ;;
  stop)
    if [ -s "$MARIADB_DIR/mariadbd.pid" ]; then
      pid=$(cat "$MARIADB_DIR/mariadbd.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi ;;
  url) url ;;
  *) echo "usage: mariadb.sh start|stop|url" >&2; exit 2 ;;
esac
