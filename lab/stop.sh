#!/usr/bin/env bash
# lab/stop.sh RUN_DIR: stops the lab started in RUN_DIR (SIGTERM to every
# process group at once, SIGKILL after LAB_STOP_TIMEOUT_MS, default 3000),
# and drops its MariaDB/MySQL database and user (mysql variant).
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$LAB_DIR/lib.sh"

[[ $# -eq 1 && -n $1 ]] || die "usage: lab/stop.sh RUN_DIR"
[[ -d $1 ]] || die "no run directory $1"
RUN_DIR=$(cd "$1" && pwd)
stop_pids "$RUN_DIR/kamailio.pid" "$RUN_DIR/sipp-echo.pid" "$RUN_DIR/sipp-gw.pid"
drop_db_mysql
