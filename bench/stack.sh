#!/usr/bin/env bash
# The production stack for benchmarks, on this machine: reportd `api` and
# `worker` processes on the services of scripts/services.sh (Kafka, PostgreSQL,
# Redis, S3), with a fresh database, topic, consumer group and bucket prefix
# per run, so runs do not see each other's jobs.
#
#   bench/stack.sh up [APIS] [WORKERS]   start APIS api (default 1) and WORKERS
#                                        worker processes (default 2); prints the
#                                        API URLs, one per line
#   bench/stack.sh down                  stop them (SIGTERM, then SIGKILL)
#   bench/stack.sh pids                  "name pid port" per process (for bench/breakdown.py)
#
# It uses target/release/reportd (build it first: cargo build --release).
# Extra settings pass through: REPORTD__POOLS__IN_FLIGHT=16 bench/stack.sh up
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${REPORTD_BENCH_DIR:-target/bench-stack}
BIN=${REPORTD_BIN:-target/release/reportd}
BASE_PORT=${REPORTD_BENCH_PORT:-18080}

down() {
  [[ -f $RUN/pids ]] || return 0
  while read -r _ pid _; do kill -TERM "$pid" 2>/dev/null || true; done <"$RUN/pids"
  for _ in $(seq 50); do
    alive=0
    while read -r _ pid _; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$RUN/pids"
    ((alive)) || break
    sleep 0.2
  done
  while read -r _ pid _; do kill -KILL "$pid" 2>/dev/null || true; done <"$RUN/pids"
  rm -f "$RUN/pids"
}

ready() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$1/ready"; }

up() {
  local apis=${1:-1} workers=${2:-2}
  [[ -x $BIN ]] || { echo "stack.sh: $BIN is missing: cargo build --release" >&2; exit 1; }
  down
  mkdir -p "$RUN"
  scripts/services.sh up >/dev/null
  eval "$(scripts/services.sh env)"
  local tag db
  tag=$(date +%s)
  db=reportd_bench_$tag
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" >/dev/null
  export REPORTD__DATABASE__URL=postgres://postgres@127.0.0.1:5432/$db
  export REPORTD__QUEUE__TOPIC=bench.$tag.jobs REPORTD__QUEUE__DLQ_TOPIC=bench.$tag.dlq
  export REPORTD__QUEUE__GROUP_ID=bench.$tag.workers
  export REPORTD__STORAGE__PREFIX=bench-$tag/ REPORTD__CACHE__KEY_PREFIX=bench-$tag:status:
  export REPORTD__LOG__LEVEL=${REPORTD__LOG__LEVEL:-warn}
  : >"$RUN/pids"
  # Migrations once, before the processes race for them.
  "$BIN" migrate >"$RUN/migrate.log" 2>&1
  local i port
  for ((i = 0; i < apis; i++)); do
    port=$((BASE_PORT + i))
    REPORTD__HTTP__PORT=$port REPORTD__DATA_DIR=$RUN/api-$i "$BIN" api >"$RUN/api-$i.log" 2>&1 &
    echo "api-$i $! $port" >>"$RUN/pids"
  done
  for ((i = 0; i < workers; i++)); do
    port=$((BASE_PORT + 100 + i))
    REPORTD__HTTP__PORT=$port REPORTD__DATA_DIR=$RUN/worker-$i "$BIN" worker >"$RUN/worker-$i.log" 2>&1 &
    echo "worker-$i $! $port" >>"$RUN/pids"
  done
  for ((i = 0; i < apis; i++)); do wait_ready $((BASE_PORT + i)) "api-$i"; done
  for ((i = 0; i < workers; i++)); do wait_ready $((BASE_PORT + 100 + i)) "worker-$i"; done
  wait_assigned "$workers"
  echo "$db" >"$RUN/database"
  for ((i = 0; i < apis; i++)); do echo "http://127.0.0.1:$((BASE_PORT + i))"; done
}

wait_ready() {
  local deadline=$((SECONDS + 60))
  until ready "$1"; do
    if ((SECONDS > deadline)); then
      echo "stack.sh: $2 not ready in 60 s; log: $RUN/$2.log" >&2
      tail -n 20 "$RUN/$2.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# Ready is not yet consuming: wait until the consumer group has settled, every
# partition of the jobs topic with a worker and no worker idle (when there are
# enough partitions), so a run does not time the group's first rebalance.
wait_assigned() {
  local workers=$1 partitions=${REPORTD__QUEUE__PARTITIONS:-4} deadline=$((SECONDS + 120)) t0=$SECONDS
  local want_each=$((workers <= partitions ? 1 : 0))
  while :; do
    local total=0 idle=0 i n
    for ((i = 0; i < workers; i++)); do
      n=$(curl -sf --max-time 2 "http://127.0.0.1:$((BASE_PORT + 100 + i))/metrics" |
        awk '$1 == "reportd_kafka_partitions_assigned" { print int($2) }')
      n=${n:-0}
      total=$((total + n))
      ((n >= want_each)) || idle=1
    done
    ((total == partitions && idle == 0)) && break
    if ((SECONDS > deadline)); then
      echo "stack.sh: the consumer group did not settle in 120 s ($total of $partitions partitions assigned)" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "stack.sh: consumer group settled in $((SECONDS - t0)) s" >&2
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  pids) cat "$RUN/pids" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
