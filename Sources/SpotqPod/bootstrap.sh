#!/usr/bin/env bash
# spotq's pod bootstrap: what a rented pod runs first (the provisioner's dockerArgs fetch
# it from the spotq server, check its SHA-256 and exec it). It
#   1. probes the GPU (nvidia-smi, then CUDA through the Python ComfyUI will use);
#   2. installs the system packages spotq and ComfyUI need (skipped when present);
#   3. fetches the spotq binary from the server and checks its SHA-256;
#   4. installs ComfyUI at a pinned version, its Python venv and a pinned list of custom
#      nodes onto the volume (a resumed pod skips all of it);
#   5. starts ComfyUI on 127.0.0.1 only, pointed at the worker's model folders, with output
#      metadata off, under `spotq supervise`, and waits for /system_stats;
#   6. runs `spotq worker` under `spotq supervise` (restarts after a crash, with backoff;
#      not after exit 0, 3, 4 or 5), forwarding SIGTERM at once;
#   7. then idles (`sleep infinity`): the container must not end, or RunPod restarts it in
#      a loop; the provisioner terminates the pod.
# A broken GPU skips step 4 and 5: the worker's own check then reports gpu_failed, with
# the check's output, and exits 3.
#
# Each step writes a marker (<volume>/spotq/markers/<step>) only once it is complete, and
# cleans up its own half-done work before starting again, so a pod killed at any point
# resumes where it stopped. Logs are kept on the volume (<volume>/spotq/logs), rotated.
#
# Settings (environment; the provisioner sets the first four):
#   SPOTQ_SERVER_URL          the spotq server (the binary comes from <url>/v1/pod/spotq)
#   SPOTQ_BINARY_SHA256       the binary's expected SHA-256
#   SPOTQ_WORKSPACE           the pod's volume (default /workspace)
#   SPOTQ_GPU_CHECK           shell command that exits 0 on a usable GPU (default below)
#   SPOTQ_COMFY_REPO, SPOTQ_COMFY_REF   ComfyUI's git repository and pinned tag
#   SPOTQ_CUSTOM_NODES        space-separated URL@REF of custom nodes (default: none)
#   SPOTQ_COMFY_PORT          ComfyUI's port on 127.0.0.1 (default 8188)
#   SPOTQ_COMFY_START_SECONDS longest wait for ComfyUI to answer (default 600)
#   SPOTQ_POD_PYTHON          the Python with CUDA torch the venv builds on (default python3)
#   SPOTQ_LOG_MAX_BYTES, SPOTQ_LOG_KEEP  log rotation (default 10 MB, 5 files)
set -euo pipefail

volume=${SPOTQ_WORKSPACE:-/workspace}
state="$volume/spotq"
markers="$state/markers"
logs="$state/logs"
spotq="$state/bin/spotq"
comfy_dir="$volume/ComfyUI"
venv="$volume/venv"
python=${SPOTQ_POD_PYTHON:-python3}
comfy_repo=${SPOTQ_COMFY_REPO:-https://github.com/comfyanonymous/ComfyUI.git}
comfy_ref=${SPOTQ_COMFY_REF:-v0.3.64}
custom_nodes=${SPOTQ_CUSTOM_NODES:-}
comfy_port=${SPOTQ_COMFY_PORT:-8188}
comfy_start_seconds=${SPOTQ_COMFY_START_SECONDS:-600}
log_max_bytes=${SPOTQ_LOG_MAX_BYTES:-10000000}
log_keep=${SPOTQ_LOG_KEEP:-5}
server=${SPOTQ_SERVER_URL:?SPOTQ_SERVER_URL is not set: the spotq server this pod fetches its binary from}
binary_sha256=${SPOTQ_BINARY_SHA256:?SPOTQ_BINARY_SHA256 is not set: the SHA-256 the spotq binary must have}
# The worker runs the same check before it takes any work (and reports gpu_failed).
export SPOTQ_GPU_CHECK=${SPOTQ_GPU_CHECK:-"nvidia-smi -L && $python -c 'import torch, sys; torch.zeros(1).cuda(); sys.exit(0 if torch.cuda.is_available() else 1)'"}
# What spotq links (libcurl, rabbitmq-c, libpq, zlib) and what ComfyUI's install needs.
packages="ca-certificates curl git python3-venv libcurl4 librabbitmq4 libpq5 zlib1g"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# What only the worker needs: the GPU check, git, pip and ComfyUI (with its custom nodes,
# anyone's code) run without it. (A process of the same user can still read the worker's
# /proc/<pid>/environ; this keeps the secrets out of what they are handed.)
no_secrets=(env -u SPOTQ_UPLOAD_TOKEN -u SPOTQ_AMQP_URL)

mkdir -p "$markers" "$logs" "$state/bin"
# Keeps the bootstrap's own log from growing across many resumes.
if [[ -f "$logs/bootstrap.log" ]] && (($(stat -c %s "$logs/bootstrap.log") > log_max_bytes)); then
    mv -f "$logs/bootstrap.log" "$logs/bootstrap.log.1"
fi
exec > >(tee -a "$logs/bootstrap.log") 2>&1

log() { printf '%s bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
fail() {
    log "FAILED: $*"
    exit 1
}

# step NAME FUNCTION: runs FUNCTION unless NAME's marker says it finished before. The
# function must start by removing what an earlier, killed run of it left half-done.
step() {
    local name=$1 started=$SECONDS
    shift
    if [[ -e "$markers/$name" ]]; then
        log "$name: done before, skipped"
        return 0
    fi
    log "$name: starting"
    "$@"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$markers/$name.tmp"
    mv -f "$markers/$name.tmp" "$markers/$name"
    log "$name: done in $((SECONDS - started)) s"
}

install_packages() {
    local missing=() package
    for package in $packages; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        log "packages: all present"
        return 0
    fi
    log "packages: installing ${missing[*]}"
    # dpkg resumes an interrupted install itself once told to.
    dpkg --configure -a
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Not a marker step: the binary's hash is its identity, so a pod resumed with a newer
# binary's hash fetches that one. The token goes through curl's config on stdin, never
# on a command line.
fetch_binary() {
    if [[ -x "$spotq" && "$(sha256_of "$spotq")" == "$binary_sha256" ]]; then
        log "binary: present and verified"
        return 0
    fi
    local partial="$spotq.partial" attempt
    for attempt in 1 2 3; do
        rm -f "$partial"
        log "binary: fetching $server/v1/pod/spotq (attempt $attempt)"
        if curl -fsS --retry 5 --retry-delay 2 --connect-timeout 20 -o "$partial" "$server/v1/pod/spotq"; then
            local got
            got=$(sha256_of "$partial")
            if [[ "$got" == "$binary_sha256" ]]; then
                chmod 0755 "$partial"
                mv -f "$partial" "$spotq"
                log "binary: verified ($binary_sha256)"
                return 0
            fi
            log "binary: SHA-256 $got is not the expected $binary_sha256; discarded"
        fi
        ((attempt == 3)) || sleep $((attempt * 2))
    done
    rm -f "$partial"
    fail "binary: no verified spotq binary from $server"
}

check_binary_libraries() {
    local unresolved
    unresolved=$(ldd "$spotq" 2>&1 | grep 'not found' || true)
    [[ -z "$unresolved" ]] || fail "binary: libraries missing on this image: $unresolved"
}

install_comfyui() {
    rm -rf "$comfy_dir" "$comfy_dir.partial"
    "${no_secrets[@]}" git clone --quiet --depth 1 --branch "$comfy_ref" "$comfy_repo" "$comfy_dir.partial"
    mkdir -p "$comfy_dir.partial/custom_nodes"
    mv "$comfy_dir.partial" "$comfy_dir"
}

# On the image's Python, whose CUDA build of torch ComfyUI then uses as is.
install_venv() {
    rm -rf "$venv"
    if "$python" -m pip --version >/dev/null 2>&1; then
        # The image's pip serves the venv too (a copy of pip takes seconds to set up).
        "$python" -m venv --system-site-packages --without-pip "$venv"
    else
        "$python" -m venv --system-site-packages "$venv"
    fi
    install_requirements "$comfy_dir/requirements.txt"
}

# install_requirements FILE: into the venv, unless FILE names nothing to install.
install_requirements() {
    if grep -qvE '^[[:space:]]*(#|$)' "$1"; then
        "${no_secrets[@]}" "$venv/bin/python" -m pip install --quiet -r "$1"
    fi
}

# install_custom_node URL@REF
install_custom_node() {
    local url=${1%@*} ref=${1##*@} name
    name=$(basename "$url" .git)
    rm -rf "$comfy_dir/custom_nodes/$name" "$comfy_dir/custom_nodes/$name.partial"
    "${no_secrets[@]}" git clone --quiet "$url" "$comfy_dir/custom_nodes/$name.partial"
    git -C "$comfy_dir/custom_nodes/$name.partial" checkout --quiet "$ref"
    if [[ -f "$comfy_dir/custom_nodes/$name.partial/requirements.txt" ]]; then
        install_requirements "$comfy_dir/custom_nodes/$name.partial/requirements.txt"
    fi
    mv "$comfy_dir/custom_nodes/$name.partial" "$comfy_dir/custom_nodes/$name"
}

# The worker downloads models into <volume>/models/<kind>; ComfyUI reads them there.
write_model_paths() {
    cat >"$state/extra_model_paths.yaml.tmp" <<YAML
spotq:
    base_path: $volume/models
    checkpoints: checkpoints
    loras: loras
YAML
    mv -f "$state/extra_model_paths.yaml.tmp" "$state/extra_model_paths.yaml"
    mkdir -p "$volume/models/checkpoints" "$volume/models/loras" "$state/comfy-output"
}

comfy_supervisor=""
worker_supervisor=""
terminating=false
# A reclaim's SIGTERM goes to the worker only: it may still use ComfyUI while it hands its
# work back. Before the worker runs there is nothing to hand back.
forward_termination() {
    if [[ -z "$worker_supervisor" ]]; then
        log "termination notice before the worker started: leaving"
        [[ -z "$comfy_supervisor" ]] || kill -TERM "$comfy_supervisor" 2>/dev/null || true
        exit 143
    fi
    log "termination notice: forwarding SIGTERM to the worker"
    terminating=true
    kill -TERM "$worker_supervisor" 2>/dev/null || true
}
trap forward_termination TERM INT

start_comfyui() {
    (cd "$comfy_dir" && exec "${no_secrets[@]}" "$spotq" supervise --name comfyui --log "$logs/comfyui.log" \
        --log-max-bytes "$log_max_bytes" --log-keep "$log_keep" -- \
        "$venv/bin/python" main.py --listen 127.0.0.1 --port "$comfy_port" \
        --extra-model-paths-config "$state/extra_model_paths.yaml" \
        --output-directory "$state/comfy-output" --disable-metadata) &
    comfy_supervisor=$!
    local deadline=$((SECONDS + comfy_start_seconds))
    until curl -fsS -o /dev/null "http://127.0.0.1:$comfy_port/system_stats"; do
        if ((SECONDS >= deadline)); then
            log "comfyui: not answering after $comfy_start_seconds s (see $logs/comfyui.log); the worker reports the fault"
            return 0
        fi
        sleep 1
    done
    log "comfyui: answering on 127.0.0.1:$comfy_port"
}

log "starting on volume $volume"
gpu_usable=true
if gpu_output=$("${no_secrets[@]}" sh -c "$SPOTQ_GPU_CHECK" 2>&1); then
    log "gpu: usable"
else
    gpu_usable=false
    log "gpu: check failed; skipping installs so the worker reports it: $(printf '%s' "$gpu_output" | tail -c 500)"
fi
step packages install_packages
fetch_binary
check_binary_libraries
if $gpu_usable; then
    step comfyui install_comfyui
    step venv install_venv
    for node in $custom_nodes; do
        step "custom-node-$(basename "${node%@*}" .git)-${node##*@}" install_custom_node "$node"
    done
    write_model_paths
    start_comfyui
fi

export SPOTQ_COMFY_URL="http://127.0.0.1:$comfy_port" SPOTQ_COMFY_OUTPUT_DIR="$state/comfy-output"
log "starting the worker, $SECONDS s after the bootstrap started"
"$spotq" supervise --name worker --log "$logs/worker.log" --log-max-bytes "$log_max_bytes" --log-keep "$log_keep" \
    --no-restart 0,3,4,5 -- "$spotq" worker &
worker_supervisor=$!
# `wait` returns early when a trapped signal arrives, while the worker is still finishing.
status=0
while true; do
    status=0
    wait "$worker_supervisor" || status=$?
    kill -0 "$worker_supervisor" 2>/dev/null || break
done
log "worker: ended with status $status"
[[ -z "$comfy_supervisor" ]] || kill -TERM "$comfy_supervisor" 2>/dev/null || true
# Being stopped: nothing left to wait for.
if $terminating; then
    wait "$comfy_supervisor" 2>/dev/null || true
    exit 0
fi
# RunPod restarts a container whose command ends; the provisioner terminates the pod.
sleep infinity &
wait $! || true
