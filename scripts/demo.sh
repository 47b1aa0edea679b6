#!/usr/bin/env bash
# make demo: the whole pipeline on this machine, end to end.
#
# Installs what is missing, builds spotq, starts the project's PostgreSQL and RabbitMQ,
# then, in a database and RabbitMQ vhost of its own (spotq_demo, recreated each run):
# starts `spotq devcloud` (RunPod's API with pods as local containers running the real pod bootstrap, a
# model host, one broken GPU, reclaims), registers the demo models, enqueues a few hundred
# image requests over several checkpoints, and runs `spotq server` and `spotq provisioner`
# until every image is done or failed. Prints a summary and where the images are.
#
#   DEMO_IMAGES   requests to enqueue (default 300)
#   DEMO_TIMEOUT  seconds before giving up (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
images=${DEMO_IMAGES:-300}
timeout=${DEMO_TIMEOUT:-600}
demo=$root/.spotq/demo
say() { printf '\n== %s\n' "$*"; }

say "installing what is missing, starting PostgreSQL and RabbitMQ"
scripts/install-deps.sh
scripts/services.sh up
# shellcheck disable=SC1091
. .spotq/env

say "building spotq"
swift build 2>&1 | tail -n 3
spotq=$root/.build/debug/spotq

say "a fresh database and vhost: spotq_demo"
psql_url=${SPOTQ_DATABASE_URL%/*}/postgres
psql -q "$psql_url" -c 'DROP DATABASE IF EXISTS spotq_demo WITH (FORCE)' -c 'CREATE DATABASE spotq_demo' >/dev/null
"$SPOTQ_RABBITMQCTL" -q delete_vhost spotq_demo >/dev/null 2>&1 || true
"$SPOTQ_RABBITMQCTL" -q add_vhost spotq_demo
"$SPOTQ_RABBITMQCTL" -q set_permissions -p spotq_demo guest '.*' '.*' '.*'
export SPOTQ_DATABASE_URL=${SPOTQ_DATABASE_URL%/*}/spotq_demo
export SPOTQ_AMQP_URL=${SPOTQ_AMQP_URL%/*}/spotq_demo
rm -rf "$demo"
mkdir -p "$demo"
"$spotq" migrate >"$demo/migrate.log" 2>&1
# The server and the provisioner log in as their own least-privilege users (README,
# "Security"); every pod gets a user of its own from the provisioner.
"$spotq" broker-users --write-to "$demo/broker-users" >"$demo/broker-users.log"
broker_url() { sed -n 's/^SPOTQ_AMQP_URL=//p' "$demo/broker-users/$1.env"; }
# Likewise in PostgreSQL: logins in the spotq_server and spotq_provisioner roles.
"$spotq" db-users --write-to "$demo/db-users" --only server,provisioner >"$demo/db-users.log"

# Ports of the demo's own processes.
api_port=${DEMO_API_PORT:-58070}
models_port=${DEMO_MODELS_PORT:-58090}
http_port=${DEMO_HTTP_PORT:-58080}
ops_port=${DEMO_OPS_HTTP_PORT:-58081}
SPOTQ_SECRET=$(openssl rand -hex 32)
SPOTQ_RUNPOD_API_KEY=demo-$(openssl rand -hex 8)
export SPOTQ_SECRET SPOTQ_RUNPOD_API_KEY
export SPOTQ_LOG_LEVEL=info

models=(
  --asset demo_photo_xl.safetensors:checkpoint:60MB
  --asset demo_anime_v5.safetensors:checkpoint:45MB
  --asset demo_sketch_1.safetensors:checkpoint:30MB
  --asset demo_ink_style.safetensors:lora:8MB
  --asset demo_film_grain.safetensors:lora:5MB
)

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

say "starting devcloud: RunPod API on :$api_port, model host on :$models_port (the 2nd pod's GPU is broken)"
"$spotq" devcloud --port "$api_port" --assets-port "$models_port" "${models[@]}" --mbps 800 \
  --work-dir "$demo/devcloud" --seconds-per-image 0.25 --start-seconds 1 --gpu-failure-rate 0 --break-gpu 2 \
  --min-bid 0.13 --stock 8 --reclaim-grace 3 \
  --worker-env SPOTQ_IDLE_EXIT_SECONDS=3 --worker-env SPOTQ_LOG_LEVEL=info >"$demo/devcloud.log" 2>&1 &
pids+=($!)

say "registering the demo models"
"$spotq" devcloud assets-csv --base-url "http://127.0.0.1:$models_port" "${models[@]}" >"$demo/assets.csv"
"$spotq" assets import "$demo/assets.csv" --format csv

say "enqueueing $images image requests"
"$spotq" devcloud requests --count "$images" \
  --checkpoint demo_photo_xl.safetensors --checkpoint demo_anime_v5.safetensors --checkpoint demo_sketch_1.safetensors \
  --lora demo_ink_style.safetensors --lora demo_film_grain.safetensors >"$demo/requests.jsonl"
"$spotq" enqueue "$demo/requests.jsonl" --via sql 2>/dev/null | tail -n 2

# The demo GPU makes 4 images a second (devcloud's 0.25 s), and pods are sized for about
# 20 s of work each, so the fleet is a handful of pods instead of one.
export SPOTQ_GPU_IMAGES_PER_HOUR=14400 SPOTQ_PLAN_TARGET_POD_HOURS=0.006 SPOTQ_PLAN_MIN_BATCH_HOURS=0.004 \
  SPOTQ_SETUP_SECONDS=2 SPOTQ_DOWNLOAD_MBPS=800 SPOTQ_PLAN_AT_ITEMS=1 SPOTQ_PLAN_AFTER_SECONDS=1 \
  SPOTQ_HTTP_ADDR=127.0.0.1:$http_port SPOTQ_OPS_HTTP_ADDR=127.0.0.1:$ops_port SPOTQ_STORAGE_DIR=$demo/images SPOTQ_DEMAND_INTERVAL_SECONDS=2

started=$(date +%s)
say "starting spotq server (pods' HTTP on :$http_port, /metrics and the dashboard on :$ops_port) and spotq provisioner"
SPOTQ_DATABASE_URL='' SPOTQ_DATABASE_URL_FILE=$demo/db-users/server.database-url \
SPOTQ_AMQP_URL=$(broker_url spotq-server) "$spotq" server >"$demo/server.log" 2>&1 &
pids+=($!)
# Pods reach the broker over TLS, as they would over the internet, with the CA sent to them.
# (.spotq/env, sourced above, sets SPOTQ_AMQPS_URL.)
# shellcheck disable=SC2153
SPOTQ_POD_AMQP_URL=${SPOTQ_AMQPS_URL%/*}/spotq_demo SPOTQ_POD_AMQP_CA_FILE=$SPOTQ_AMQP_CA_FILE \
SPOTQ_SECRET='' SPOTQ_DATABASE_URL='' SPOTQ_DATABASE_URL_FILE=$demo/db-users/provisioner.database-url \
SPOTQ_AMQP_URL=$(broker_url spotq-provisioner) SPOTQ_DEMAND_PUBLISHERS=spotq-server \
SPOTQ_RUNPOD_API_URL=http://127.0.0.1:$api_port/graphql SPOTQ_POD_SERVER_URL=http://127.0.0.1:$http_port \
  SPOTQ_PROVISION_INTERVAL_SECONDS=2 SPOTQ_DEMAND_MAX_AGE_SECONDS=30 SPOTQ_MAX_PODS=6 SPOTQ_BUDGET_USD_PER_HOUR=2 \
  SPOTQ_POD_START_TIMEOUT_SECONDS=60 "$spotq" provisioner >"$demo/provisioner.log" 2>&1 &
pids+=($!)

sql() { psql -qtA "$SPOTQ_DATABASE_URL" -c "$1"; }
reclaimed=""
last_print=0
while true; do
  for index in 0 1 2; do
    if ! kill -0 "${pids[$index]}" 2>/dev/null; then
      name=$(echo devcloud server provisioner | cut -d' ' -f$((index + 1)))
      echo; echo "demo: spotq $name stopped; the end of $demo/$name.log:" >&2
      tail -n 15 "$demo/$name.log" >&2
      exit 1
    fi
  done
  done_count=$(sql "SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
  settled=$(sql "SELECT count(*) FROM image_generation_queue WHERE status IN ('done', 'failed')")
  pods_now=$(sql "SELECT count(*) FROM pods WHERE state <> 'terminated'")
  now=$(date +%s)
  if [[ -t 1 ]]; then
    printf '\r   %4d of %d images done, %d live pods, %3d s ' "$done_count" "$images" "$pods_now" $(( now - started ))
  elif (( now - last_print >= 10 )); then
    printf '   %4d of %d images done, %d live pods, %3d s\n' "$done_count" "$images" "$pods_now" $(( now - started ))
    last_print=$now
  fi
  if [[ -z $reclaimed && $done_count -ge $(( images / 5 )) ]]; then
    # Inject a reclaim: SIGTERM to a working pod, SIGKILL 3 s later; the pod shows EXITED.
    reclaimed=$(curl -fsS -X POST "http://127.0.0.1:$api_port/devcloud/reclaim-one" || echo none)
    printf '\n   injected a reclaim: %s\n' "$reclaimed"
  fi
  [[ $settled -ge $images ]] && break
  if (( $(date +%s) - started > timeout )); then
    echo; echo "demo: not finished after $timeout s; logs are in $demo" >&2
    exit 1
  fi
  sleep 1
done
wall=$(( $(date +%s) - started ))
# Let the provisioner release the pods (their batches have no work left).
for _ in $(seq 1 30); do
  [[ $(sql "SELECT count(*) FROM pods WHERE state <> 'terminated'") == 0 ]] && break
  sleep 1
done
echo

say "summary"
sql "SELECT 'images done:            ' || count(*) FILTER (WHERE status = 'done') || ' of ' || count(*) || ' (failed: ' || count(*) FILTER (WHERE status = 'failed') || ')' FROM image_generation_queue"
sql "SELECT 'stored files:           ' || count(*) || ', ' || count(DISTINCT item_id) || ' items, none twice' FROM image_generation_files"
sql "SELECT 'batches:                ' || count(*) FROM batches"
sql "SELECT 'pods rented:            ' || count(*) || ' (' || count(*) FILTER (WHERE NOT interruptible) || ' on-demand)' FROM pods WHERE provider_pod_id IS NOT NULL"
sql "SELECT 'reclaims survived:      ' || coalesce(sum(interruptions), 0) FROM pods"
sql "SELECT 'broken GPUs replaced:   ' || count(DISTINCT provider_pod_id) FROM pod_events WHERE kind = 'state' AND state = 'gpu_failed'"
echo "wall time:              $wall s"
sql "SELECT 'estimated cost:         ' || round(sum(accrued_usd), 4) || ' USD, ' || round(sum(accrued_usd) / greatest(1, (SELECT count(*) FROM image_generation_queue WHERE status = 'done')), 6) || ' USD per image' FROM pods"
echo "images:                 $demo/images/<batch>/<item>/"
echo
"$spotq" status
echo "logs:                   $demo/{devcloud,server,provisioner}.log, pods in $demo/devcloud/pods/"
echo "look around:            export SPOTQ_DATABASE_URL=$SPOTQ_DATABASE_URL SPOTQ_AMQP_URL=$SPOTQ_AMQP_URL"
echo "                        $spotq cost | batches --all | pods --all | dlq list"
