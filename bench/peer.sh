#!/usr/bin/env bash
# The Node BullMQ peer (../shared/peers/node-bullmq) for side-by-side runs:
# a copy in target/bench-peer (npm ci once), one API and N workers on the
# Redis at 127.0.0.1:6379 (its queue is flushed first).
#
#   bench/peer.sh up [WORKERS]   start (default 2 workers, one per core); prints the URL
#   bench/peer.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${REPORTD_PEER_SRC:-../shared/peers/node-bullmq}
DIR=target/bench-peer
PORT=${REPORTD_PEER_PORT:-3000}

down() {
  [[ -f $DIR/pids ]] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$DIR/pids"
  rm -f "$DIR/pids"
}

up() {
  local workers=${1:-2}
  down
  if [[ ! -d $DIR/node_modules ]]; then
    mkdir -p "$DIR" && cp -r "$SRC"/. "$DIR"/
    (cd "$DIR" && npm ci --no-audit --no-fund >/dev/null)
  fi
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'bull:*' | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null
  rm -rf "$DIR/data" && mkdir -p "$DIR/data"
  : >"$DIR/pids"
  (cd "$DIR" && PORT=$PORT DATA_DIR=./data exec node server.js >server.log 2>&1) &
  echo $! >>"$DIR/pids"
  for ((i = 0; i < workers; i++)); do
    (cd "$DIR" && CONCURRENCY=${PEER_CONCURRENCY:-2} DATA_DIR=./data exec node worker.js >"worker-$i.log" 2>&1) &
    echo $! >>"$DIR/pids"
  done
  local deadline=$((SECONDS + 30))
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do
    ((SECONDS < deadline)) || { echo "peer.sh: the peer did not start; see $DIR/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "http://127.0.0.1:$PORT"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
