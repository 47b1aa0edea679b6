#!/usr/bin/env bash
# A private RabbitMQ 3.10 node for tests and the demo, living in one folder.
#
#   scripts/rabbitmq-instance.sh start|stop|restart|status|destroy DIR PORT
#   scripts/rabbitmq-instance.sh ctl DIR PORT <rabbitmqctl arguments…>
#
#   start    start the node (AMQP on 127.0.0.1:PORT only) and wait until
#            `rabbitmqctl await_startup` succeeds. Succeeds at once if this node
#            already runs.
#   stop     stop exactly this node, and the epmd this script started for it.
#   restart  stop, then start.
#   status   exit 0 if running and accepting AMQP connections, 3 if not.
#   ctl      rabbitmqctl against this node, e.g. `ctl DIR PORT list_queues name`.
#   destroy  stop, then delete DIR.
#
# Connect with: amqp://guest:guest@127.0.0.1:PORT/%2F (guest works from loopback),
# or over TLS: amqps://guest:guest@localhost:PORT+3/%2F with DIR/tls/ca.pem as the
# CA (the certificate names DNS:localhost and IP:127.0.0.1; rabbitmq-c checks
# host names only against DNS names, so use `localhost`).
#
# Everything lives in DIR: etc/ (rabbitmq.conf, advanced.config, enabled_plugins,
# an empty rabbitmq-env.conf so /etc/rabbitmq is never read), mnesia/ (all node
# data), log/, home/ (HOME, holding the Erlang cookie), tls/ (a CA and the
# node's certificate, made with openssl at the first start and kept) and
# rabbitmq.pid.
#
# Ports. A node at AMQP port PORT uses the five ports PORT to PORT+4:
#   PORT     AMQP 0-9-1, 127.0.0.1 only
#   PORT+1   its own epmd (Erlang port mapper), 127.0.0.1 only
#   PORT+2   Erlang distribution (rabbitmqctl talks to the node here), 127.0.0.1 only
#   PORT+3   AMQP 0-9-1 over TLS (amqps), 127.0.0.1 only
#   PORT+4   the management HTTP API (rabbitmq_management), 127.0.0.1 only
# rabbitmqctl's own short-lived node listens on a kernel-chosen ephemeral port,
# so any number of `ctl` calls can run at once. Give each node a block of five
# ports (default 55672-55676); PORT must be at most 65531. The obvious scheme of
# PORT+10000 / PORT+20000 does not fit: 55672+20000 > 65535. Nothing here uses
# the system node's ports (5672, 4369, 25672, 35672-35682) or its cookie.
# The node name is spotq-PORT@localhost.
#
# Environment:
#   SPOTQ_RABBITMQ_CONSUMER_TIMEOUT_MS   consumer_timeout (default 900000, see
#                                        below); tests may lower it for a
#                                        private node.
#   SPOTQ_RABBITMQ_SBIN                  RabbitMQ scripts (default /usr/lib/rabbitmq/bin).
#
# The node runs as the calling user (RabbitMQ has no objection to root). We call
# /usr/lib/rabbitmq/bin directly, because Debian's /usr/sbin wrappers switch to
# the `rabbitmq` user and /var/lib/rabbitmq.
set -euo pipefail

readonly RMQ_SBIN=${SPOTQ_RABBITMQ_SBIN:-/usr/lib/rabbitmq/bin}
readonly START_TIMEOUT=60

me=rabbitmq-instance
die() {
    echo "$me: $*" >&2
    exit 1
}
usage() {
    echo "usage: $0 start|stop|restart|status|destroy DIR PORT" >&2
    echo "       $0 ctl DIR PORT <rabbitmqctl arguments...>" >&2
    exit 2
}

(($# >= 3)) || usage
command=$1
dir=$(realpath -m -- "$2")
port=$3
shift 3
[[ $command == ctl ]] || (($# == 0)) || usage
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65531)); then
    die "PORT must be 1024-65531, got '$port'"
fi
me="rabbitmq-instance[$port]"

readonly epmd_port=$((port + 1))
readonly dist_port=$((port + 2))
readonly tls_port=$((port + 3))
readonly management_port=$((port + 4))
readonly tls_dir="$dir/tls"
readonly node="spotq-$port@localhost"
readonly pid_file="$dir/rabbitmq.pid"
readonly epmd_marker="$dir/epmd.started"
readonly node_log="$dir/log/$node.log"
readonly startup_log="$dir/log/startup.log"

consumer_timeout=${SPOTQ_RABBITMQ_CONSUMER_TIMEOUT_MS:-900000}
[[ $consumer_timeout =~ ^[0-9]+$ ]] || die "SPOTQ_RABBITMQ_CONSUMER_TIMEOUT_MS must be milliseconds, got '$consumer_timeout'"
[[ -x $RMQ_SBIN/rabbitmq-server ]] || die "RabbitMQ not found in $RMQ_SBIN (run scripts/install-deps.sh)"

# The environment every RabbitMQ/Erlang program of this node runs with.
export HOME="$dir/home"
export RABBITMQ_NODENAME="$node"
export RABBITMQ_DIST_PORT="$dist_port"
export ERL_EPMD_PORT="$epmd_port"
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CONF_ENV_FILE="$dir/etc/rabbitmq-env.conf"
export RABBITMQ_CONFIG_FILE="$dir/etc/rabbitmq"
export RABBITMQ_CONFIG_FILES="$dir/etc/conf.d"
export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/etc/advanced.config"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/etc/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$dir/mnesia"
export RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_PID_FILE="$pid_file"
export ERL_CRASH_DUMP="$dir/log/erl_crash.dump"
# rabbitmqctl's own node: ephemeral listen port, loopback only. (It starts an
# epmd on ERL_EPMD_PORT when none answers, so `ctl` refuses to run then.)
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_DIST_PORT_MIN=0
export RABBITMQ_CTL_DIST_PORT_MAX=0
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset RABBITMQ_NODE_PORT RABBITMQ_NODE_IP_ADDRESS RABBITMQ_ENV_LOADED RABBITMQ_SCRIPTS_DIR

ctl() {
    "$RMQ_SBIN/rabbitmqctl" "$@"
}

# --- Helpers -------------------------------------------------------------------

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

epmd_answers() {
    epmd -port "$epmd_port" -names >/dev/null 2>&1
}

# Prints the pid of this node's beam process if it is alive.
node_pid() {
    local pid
    pid=$(cat "$pid_file" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/environ ]] || return 1
    # The pid file may be stale and the pid reused: check it is our node.
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$node" || return 1
    echo "$pid"
}

log_tail() {
    local file
    for file in "$startup_log" "$node_log"; do
        [[ -s $file ]] || continue
        echo "---- last lines of $file ----" >&2
        tail -n 40 "$file" >&2
    done
    echo "----" >&2
}

# A private CA and a server certificate for localhost / 127.0.0.1, made once.
# Test-only material: the CA key never leaves DIR/tls.
make_certificates() {
    [[ -s $tls_dir/ca.pem && -s $tls_dir/server.pem && -s $tls_dir/server.key ]] && return
    command -v openssl >/dev/null || die "openssl is missing (run scripts/install-deps.sh)"
    mkdir -p -- "$tls_dir"
    local work
    work=$(mktemp -d "$tls_dir/.make.XXXXXX")
    (
        cd "$work"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.pem \
            -subj "/CN=spotq test CA ($node)" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
            -out server.pem -extfile server.ext
        openssl verify -CAfile ca.pem server.pem
    ) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; die "could not make the TLS certificates in $tls_dir"; }
    chmod 600 "$work/ca.key" "$work/server.key"
    mv -f "$work/ca.key" "$work/server.key" "$work/server.pem" "$tls_dir/"
    # The CA last: its presence says the set is complete.
    mv -f "$work/ca.pem" "$tls_dir/ca.pem"
    rm -rf -- "$work"
}

write_config() {
    mkdir -p -- "$dir/etc/conf.d" "$dir/home" "$dir/mnesia" "$dir/log"
    make_certificates
    : >"$RABBITMQ_CONF_ENV_FILE"
    cat >"$dir/etc/rabbitmq.conf" <<EOF
# Written by scripts/rabbitmq-instance.sh at every start: edits here are lost.
listeners.tcp.default = 127.0.0.1:$port

# AMQP over TLS, as pods on the public internet reach the broker. No client
# certificates: pods log in with their own user name and password.
listeners.ssl.default = 127.0.0.1:$tls_port
ssl_options.cacertfile = $tls_dir/ca.pem
ssl_options.certfile = $tls_dir/server.pem
ssl_options.keyfile = $tls_dir/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2

# The management HTTP API: the provisioner makes and removes each pod's broker
# user through it.
management.tcp.ip = 127.0.0.1
management.tcp.port = $management_port

# consumer_timeout: how long a consumer may hold one unacknowledged delivery
# before the broker closes its channel and requeues everything on it. spotq
# sends one message per image and a worker acks it as soon as that image's
# upload gets a 2xx; it never holds a delivery across model downloads (it only
# consumes once the assets it needs are on disk). So one delivery lasts at most
# one generation plus an upload with its retries: minutes. 15 minutes is long
# enough for the slowest single image plus upload back-off, and short enough
# that the deliveries of a wedged or frozen worker come back to the queue
# quickly instead of after the 30-minute default.
consumer_timeout = $consumer_timeout

# Small disks (CI machines, laptops) must not block publishers.
disk_free_limit.absolute = 50MB

log.console = false
log.file.level = info
EOF
    cat >"$dir/etc/advanced.config" <<'EOF'
%% Written by scripts/rabbitmq-instance.sh: Erlang distribution on loopback only.
[{kernel, [{inet_dist_use_interface, {127,0,0,1}}]}].
EOF
    # The management plugin always; others enabled later with this node's
    # environment are kept.
    if ! grep -q rabbitmq_management "$RABBITMQ_ENABLED_PLUGINS_FILE" 2>/dev/null; then
        echo '[rabbitmq_management].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
    fi
}

ensure_epmd() {
    if epmd_answers; then
        return
    fi
    port_open "$epmd_port" && die "port $epmd_port (PORT+1, for epmd) is taken by another program"
    # -relaxed_command_check: `stop` can kill it even if a node is still registered.
    epmd -daemon -port "$epmd_port" -address 127.0.0.1 -relaxed_command_check </dev/null >/dev/null 2>&1 9>&-
    touch "$epmd_marker"
    local deadline=$((SECONDS + 10))
    until epmd_answers; do
        ((SECONDS < deadline)) || die "epmd did not start on 127.0.0.1:$epmd_port"
        sleep 0.1
    done
}

stop_epmd() {
    [[ -f $epmd_marker ]] || return 0
    epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
    rm -f -- "$epmd_marker"
}

# Waits until the node accepts AMQP connections and has finished booting.
# Returns 1 if the process exits first; dies on timeout.
wait_started() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$port"; do
        kill -0 "$pid" 2>/dev/null || return 1
        if ((SECONDS >= deadline)); then
            log_tail
            die "node $node did not open 127.0.0.1:$port within ${START_TIMEOUT}s"
        fi
        sleep 0.25
    done
    local remaining=$((deadline - SECONDS))
    ((remaining >= 5)) || remaining=5
    if ! ctl await_startup --timeout "$remaining" >/dev/null 2>&1; then
        log_tail
        die "rabbitmqctl await_startup failed for $node"
    fi
}

lock() {
    mkdir -p -- "$dir"
    exec 9>>"$dir/.instance.lock"
    flock -w 120 9 || die "another operation on $dir holds its lock for more than 120s"
}

# --- Commands -------------------------------------------------------------------

do_start() {
    lock
    local pid
    if pid=$(node_pid); then
        if ! wait_started "$pid"; then
            log_tail
            die "node $node exited during boot"
        fi
        echo "$me: already running ($node, pid $pid)"
        return
    fi
    write_config
    local attempt
    for attempt in 1 2 3; do
        port_open "$port" && die "port $port is taken by another program"
        port_open "$dist_port" && die "port $dist_port (PORT+2, for Erlang distribution) is taken by another program"
        port_open "$tls_port" && die "port $tls_port (PORT+3, for AMQP over TLS) is taken by another program"
        port_open "$management_port" && die "port $management_port (PORT+4, for the management API) is taken by another program"
        ensure_epmd
        : >"$startup_log"
        # setsid: a session of its own, so the node outlives this script and its
        # terminal. 9>&- : it must not inherit our lock. $! is rabbitmq-server's
        # shell, which stays as beam's parent; the node soon replaces the pid file
        # with beam's own pid, which `stop` signals if rabbitmqctl cannot stop it.
        setsid "$RMQ_SBIN/rabbitmq-server" </dev/null >>"$startup_log" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$pid_file"
        if wait_started "$pid"; then
            pid=$(node_pid) || true
            echo "$me: running $node, AMQP 127.0.0.1:$port, AMQPS localhost:$tls_port, management 127.0.0.1:$management_port, epmd $epmd_port, distribution $dist_port (pid $pid, logs $dir/log)"
            return
        fi
        # Seen once: the distribution port check failed although nothing listened
        # there, most likely a short-lived outgoing connection that the kernel had
        # given that (ephemeral-range) local port. A second try then succeeds.
        ((attempt < 3)) || break
        echo "$me: node exited during boot (attempt $attempt): $(grep -m1 -E '^ERROR|error' "$startup_log" || true); retrying" >&2
        sleep 1
    done
    log_tail
    die "node $node exited during boot"
}

do_stop() {
    if [[ ! -d $dir ]]; then
        echo "$me: not running (no node in $dir)"
        return
    fi
    lock
    local pid
    if pid=$(node_pid); then
        timeout 60 "$RMQ_SBIN/rabbitmqctl" stop "$pid_file" >/dev/null 2>&1 || true
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + 30))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
            if kill -0 "$pid" 2>/dev/null; then
                echo "$me: node did not stop within 30s of SIGTERM; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        echo "$me: stopped $node"
    else
        echo "$me: not running"
    fi
    rm -f -- "$pid_file"
    stop_epmd
}

do_status() {
    local pid
    if pid=$(node_pid); then
        if port_open "$port"; then
            echo "$me: running $node, pid $pid, AMQP 127.0.0.1:$port"
            return 0
        fi
        echo "$me: process $pid running but 127.0.0.1:$port is not accepting connections"
        return 3
    fi
    echo "$me: stopped ($dir)"
    return 3
}

do_destroy() {
    do_stop
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
ctl)
    if ! epmd_answers; then
        echo "$me: node $node is not running (no epmd on 127.0.0.1:$epmd_port)" >&2
        exit 69 # what rabbitmqctl itself returns for an unreachable node (EX_UNAVAILABLE)
    fi
    exec "$RMQ_SBIN/rabbitmqctl" "$@"
    ;;
destroy) do_destroy ;;
*) usage ;;
esac
