#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests and the demo, living in one folder.
#
#   scripts/postgres-instance.sh start|stop|restart|status|destroy DIR PORT
#
#   start    initdb on first use (superuser `spotq`, trust auth, UTF8, no locale),
#            create database `spotq`, start on 127.0.0.1:PORT only; waits until
#            pg_isready answers. Succeeds at once if this cluster already runs.
#   stop     fast shutdown of exactly this cluster (nothing else is touched).
#   restart  stop, then start.
#   status   exit 0 if running, 3 if not.
#   destroy  stop, then delete the cluster and DIR.
#
# Connect with: postgresql://spotq@127.0.0.1:PORT/spotq
#
# Any number of DIR/PORT pairs can run side by side (tests start throwaway
# clusters next to the main one); operations on one DIR are serialised by a lock.
#
# Environment:
#   SPOTQ_PG_FSYNC=on|off   default on. `off` also turns off synchronous_commit
#                           and full_page_writes: faster, but a crash of the
#                           machine can corrupt the cluster. Test instances only.
#   SPOTQ_PG_BIN            PostgreSQL binaries (default /usr/lib/postgresql/15/bin).
#
# Who runs the server: initdb and postgres refuse to run as root. As root we run
# them as the `postgres` system user (runuser); as anyone else, as that user.
#
# Where the files live: normally everything is in DIR (DIR/data, DIR/postgres.log
# and the unix socket DIR/.s.PGSQL.PORT), with DIR owned by the server's user.
# Two things can make DIR unusable for the server: the `postgres` user cannot
# reach it (a checkout under /root, whose mode is 0700, is the common case), or
# its path is too long for a unix socket (sun_path holds 107 bytes). We do not
# loosen permissions on the user's directories; instead the cluster then lives
# in /var/tmp/spotq-postgres-<first 16 hex of sha256(absolute DIR)> (reachable by
# every user, survives reboots unlike /tmp on some systems) and DIR/instance is
# a symlink to it. The choice is made once, at the first start, and kept.
set -euo pipefail

readonly PG_BIN=${SPOTQ_PG_BIN:-/usr/lib/postgresql/15/bin}
readonly SUPERUSER=spotq
readonly DATABASE=spotq
readonly START_TIMEOUT=30

me=postgres-instance
die() {
    echo "$me: $*" >&2
    exit 1
}
usage() {
    echo "usage: $0 start|stop|restart|status|destroy DIR PORT" >&2
    exit 2
}

(($# == 3)) || usage
command=$1
port=$3
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65535)); then
    die "PORT must be 1024-65535, got '$port'"
fi
dir=$(realpath -m -- "$2")
me="postgres-instance[$port]"

fsync=${SPOTQ_PG_FSYNC:-on}
[[ $fsync == on || $fsync == off ]] || die "SPOTQ_PG_FSYNC must be on or off, got '$fsync'"
[[ -x $PG_BIN/postgres ]] || die "PostgreSQL 15 not found in $PG_BIN (run scripts/install-deps.sh)"

if ((EUID == 0)); then
    server_user=postgres
    id -u "$server_user" >/dev/null 2>&1 || die "system user 'postgres' missing (run scripts/install-deps.sh)"
    run_as_server() { (cd / && runuser -u "$server_user" -- env -i PATH="$PG_BIN:/usr/bin:/bin" LC_ALL=C "$@"); }
else
    server_user=$(id -un)
    run_as_server() { (cd / && env -i PATH="$PG_BIN:/usr/bin:/bin" LC_ALL=C "$@"); }
fi

# --- Where the cluster lives ---------------------------------------------------

fallback_state=/var/tmp/spotq-postgres-$(printf '%s' "$dir" | sha256sum | cut -c1-16)

# Sets `state` (the folder holding data/, postgres.log and the socket) for an
# existing instance; returns 1 if DIR holds no cluster yet.
find_state() {
    if [[ -L $dir/instance ]]; then
        state=$(readlink -- "$dir/instance")
    elif [[ -d $dir/data ]]; then
        state=$dir
    else
        return 1
    fi
}

# Sets `state` for `start`, creating and choosing the location on first use.
prepare_state() {
    if find_state; then
        [[ -d $state ]] || die "$dir/instance points to missing $state (run destroy, then start)"
        return
    fi
    mkdir -p -- "$dir"
    if ((EUID == 0)); then chown "$server_user:" "$dir"; fi
    chmod 700 "$dir"
    local socket="$dir/.s.PGSQL.$port"
    if ((${#socket} <= 100)) && run_as_server test -w "$dir" -a -x "$dir"; then
        state=$dir
    else
        state=$fallback_state
        mkdir -p -- "$state"
        if ((EUID == 0)); then chown "$server_user:" "$state"; fi
        chmod 700 "$state"
        ln -sfn -- "$state" "$dir/instance"
        echo "$me: $dir is not usable by user $server_user (permissions or socket path length); cluster lives in $state"
    fi
}

# --- Helpers -------------------------------------------------------------------

is_running() {
    [[ -f $state/data/PG_VERSION ]] && run_as_server pg_ctl -D "$state/data" status >/dev/null 2>&1
}

running_port() {
    sed -n 4p "$state/data/postmaster.pid" 2>/dev/null || true
}

log_tail() {
    echo "---- last lines of $state/postgres.log ----" >&2
    tail -n 40 "$state/postgres.log" >&2 2>/dev/null || true
    echo "----" >&2
}

client() {
    local tool=$1
    shift
    PGCONNECT_TIMEOUT=5 "$PG_BIN/$tool" -h 127.0.0.1 -p "$port" -U "$SUPERUSER" "$@"
}

wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; do
        if ((SECONDS >= deadline)); then
            log_tail
            die "server did not answer pg_isready on 127.0.0.1:$port within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

ensure_database() {
    local exists
    exists=$(client psql -X -d postgres -tAc "select 1 from pg_database where datname = '$DATABASE'") ||
        die "cannot query the server on 127.0.0.1:$port"
    if [[ $exists != 1 ]]; then
        client createdb "$DATABASE" || die "createdb $DATABASE failed"
    fi
}

init_cluster() {
    local staging="$state/data.initdb" sync_flag=()
    [[ $fsync == off ]] && sync_flag=(--no-sync)
    rm -rf -- "$staging"
    echo "$me: initdb in $state/data"
    if ! run_as_server initdb -D "$staging" -U "$SUPERUSER" -A trust -E UTF8 --no-locale "${sync_flag[@]}" \
        >"$state/initdb.log" 2>&1; then
        tail -n 40 "$state/initdb.log" >&2
        die "initdb failed (full output in $state/initdb.log)"
    fi
    printf "\n# Settings for this spotq instance, rewritten at every start.\ninclude_if_exists = 'spotq.conf'\n" \
        >>"$staging/postgresql.conf"
    # Renaming last means an interrupted initdb never leaves a half-made cluster.
    mv -- "$staging" "$state/data"
}

write_settings() {
    local conf="$state/data/spotq.conf" socket_dir=${state//\'/\'\'}
    local durable=$fsync
    cat >"$conf" <<EOF
# Written by scripts/postgres-instance.sh at every start: edits here are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$socket_dir'
max_connections = 200
# SPOTQ_PG_FSYNC=$fsync (off is for throwaway test clusters only)
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
EOF
    if ((EUID == 0)); then chown "$server_user:" "$conf"; fi
}

lock() {
    mkdir -p -- "$dir"
    exec 9>>"$dir/.instance.lock"
    flock -w 120 9 || die "another operation on $dir holds its lock for more than 120s"
}

# --- Commands -------------------------------------------------------------------

do_start() {
    lock
    prepare_state
    if is_running; then
        local actual
        actual=$(running_port)
        [[ $actual == "$port" ]] || die "this cluster already runs on port $actual, not $port; stop it first"
        wait_ready
        ensure_database
        echo "$me: already running (data $state/data)"
        return
    fi
    [[ -f $state/data/PG_VERSION ]] || init_cluster
    write_settings
    # 9>&- : the server must not inherit our lock, or it would hold it forever.
    if ! run_as_server pg_ctl -D "$state/data" -l "$state/postgres.log" -s -w -t "$START_TIMEOUT" start 9>&-; then
        log_tail
        die "pg_ctl start failed (is port $port taken?)"
    fi
    wait_ready
    ensure_database
    echo "$me: running on 127.0.0.1:$port (data $state/data, log $state/postgres.log)"
}

do_stop() {
    if [[ ! -d $dir ]] || ! find_state; then
        echo "$me: not running (no cluster in $dir)"
        return
    fi
    lock
    if ! is_running; then
        echo "$me: not running"
        return
    fi
    if ! run_as_server pg_ctl -D "$state/data" -m fast -s -w -t 60 stop; then
        log_tail
        die "pg_ctl stop failed"
    fi
    echo "$me: stopped"
}

do_status() {
    if [[ -d $dir ]] && find_state && is_running; then
        local pid
        pid=$(head -n 1 "$state/data/postmaster.pid")
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$(running_port)" -t 2; then
            echo "$me: running, pid $pid, 127.0.0.1:$(running_port), data $state/data"
        else
            echo "$me: process $pid running but not accepting connections on 127.0.0.1:$(running_port)"
        fi
        return 0
    fi
    echo "$me: stopped ($dir)"
    return 3
}

do_destroy() {
    do_stop
    if find_state 2>/dev/null && [[ $state != "$dir" ]]; then
        rm -rf -- "$state"
    fi
    rm -rf -- "$dir"
    echo "$me: destroyed $dir"
}

case $command in
start) do_start ;;
stop) do_stop ;;
restart)
    do_stop
    do_start
    ;;
status) do_status ;;
destroy) do_destroy ;;
*) usage ;;
esac
