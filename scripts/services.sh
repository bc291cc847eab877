#!/usr/bin/env bash
# Real backing services for reportd's tests, on loopback, without Docker:
# PostgreSQL, Redis, tansu (Kafka API) and Garage (S3 API).
#
#   scripts/services.sh up       start what is down (installing tansu/garage once)
#   scripts/services.sh down     stop tansu and garage if this script started them
#   scripts/services.sh status   one line per service; non-zero if any is down
#   scripts/services.sh env      export lines: eval "$(scripts/services.sh env)"
#
# State (configs, data, logs, pid files, the S3 key) lives outside the clone in
# ${REPORTD_SERVICES_DIR:-~/.local/state/reportd-services}.
set -euo pipefail

STATE=${REPORTD_SERVICES_DIR:-$HOME/.local/state/reportd-services}
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
# cargo install puts tansu/garage here; a fresh shell may not have it on PATH yet.
[[ :$PATH: == *:$CARGO_BIN:* ]] || PATH=$CARGO_BIN:$PATH

TANSU_VERSION=0.6.0
GARAGE_VERSION=2.5.0
# Only the features the tests use (see docs/services.md for the build times).
# tansu's default features only pull in the broker, CLI, schema and storage
# crates, all of which a storage feature pulls in anyway; a storage feature is
# required (without one the broker refuses every engine, memory:// included):
#   dynostore  memory:// storage of the plain broker on :9092
#   libsql     sqlite:// storage of the SASL broker behind TLS: memory storage
#              keeps no SCRAM credentials (tansu 0.6 DynoStore never stores them)
TANSU_FEATURES=(dynostore libsql)
# Garage runs on db_engine = "sqlite"; lmdb, k2v and metrics (Prometheus) are unused.
GARAGE_FEATURES=(bundled-libs sqlite)
HOST=127.0.0.1
PG_PORT=5432 REDIS_PORT=6379 KAFKA_PORT=9092
S3_PORT=3900 RPC_PORT=3901 ADMIN_PORT=3903
BUCKET=reports KEY_NAME=reportd

GARAGE_CONF=$STATE/garage/garage.toml
KEY_FILE=$STATE/garage/s3-key.env   # KEY_ID=… and KEY_SECRET=… (hex only, safe to source)

die() { echo "services.sh: $*" >&2; exit 1; }

# True when something accepts TCP connections on $HOST:$1.
listening() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

pg_ok() { pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2; }
redis_ok() { [[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
kafka_ok() { listening "$KAFKA_PORT" && timeout 5 tansu topic list --broker "tcp://$HOST:$KAFKA_PORT" >/dev/null 2>&1; }
garage_rpc_ok() { listening "$S3_PORT" && garage -c "$GARAGE_CONF" node id -q >/dev/null 2>&1; }
# The admin API answers 200 only once the layout is applied and the node is healthy.
garage_ok() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$HOST:$ADMIN_PORT/health") == 200 ]]
}

# wait_for NAME SECONDS LOG PIDFILE|"" CMD...: poll CMD until it succeeds; on
# timeout (or when the process in PIDFILE dies) show the log tail and fail.
wait_for() {
  local name=$1 secs=$2 log=$3 pidfile=$4; shift 4
  local deadline=$((SECONDS + secs))
  until "$@"; do
    if [[ -n $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      [[ -f $log ]] && tail -n 30 "$log" >&2
      die "$name exited during startup (log: $log)"
    fi
    if ((SECONDS >= deadline)); then
      [[ -f $log ]] && tail -n 30 "$log" >&2
      die "$name not ready after ${secs}s (log: ${log:-none})"
    fi
    sleep 0.5
  done
}

# run_logged LOG CMD...: run quietly, appending output to LOG; show its tail on failure.
run_logged() {
  local log=$1; shift
  echo "+ $*" >>"$log"
  if ! "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "failed: $* (log: $log)"
  fi
}

ensure_cargo() {
  command -v cargo >/dev/null && return
  # shellcheck source=/dev/null
  [[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]] && . "${CARGO_HOME:-$HOME/.cargo}/env"
  command -v cargo >/dev/null || die "cargo not found (install Rust via rustup first)"
}

# cargo_install BIN CRATE@VERSION FEATURE...: installs into $CARGO_BIN (reused
# by later runs and CI on the same machine), replacing a build with other features.
# The log ends with the wall and CPU time of the build.
cargo_install() {
  local bin=$1 crate=$2; shift 2
  ensure_cargo
  local log=$STATE/install-$bin.log features
  features=$(IFS=,; echo "$*")
  echo "installing $crate ($features) into $CARGO_BIN (a few minutes; log: $log)..." >&2
  local t0=$SECONDS
  run_logged "$log" bash -c 'time "$@"' _ cargo install --locked --force \
    --no-default-features --features "$features" "$crate"
  echo "installed $crate in $((SECONDS - t0))s" >&2
  hash -r
  command -v "$bin" >/dev/null || die "$bin still not on PATH after cargo install"
}

# True when tansu is version $TANSU_VERSION with every storage engine in TANSU_FEATURES.
tansu_build_ok() {
  local help engines f
  [[ $(tansu --version 2>/dev/null) == *" $TANSU_VERSION" ]] || return 1
  help=$(tansu --help 2>/dev/null) || return 1
  engines=${help#*Storage engines: }
  engines=", ${engines%%$'\n'*},"
  for f in "${TANSU_FEATURES[@]}"; do [[ $engines == *", $f,"* ]] || return 1; done
}

# True when garage is version $GARAGE_VERSION and has the sqlite engine.
# (`garage --version` prints e.g. "garage cargo:2.5.0 [features: bundled-libs, sqlite]".)
garage_build_ok() {
  local v
  v=$(garage --version 2>/dev/null) || return 1
  [[ $v == *"$GARAGE_VERSION "* && $v == *"[features:"*sqlite* ]]
}

# Start a daemon detached from this script (setsid: own session, survives the
# caller's exit and Ctrl-C), logging to $STATE/NAME.log, pid in $STATE/NAME.pid.
# Inherited descriptors above 2 are closed first: the daemon must not keep the
# lock (fd 9) or a caller's pipe open, or later runs and callers would hang.
# A log above 10 MB is rotated to NAME.log.1 at start (Garage logs each request).
start_daemon() {
  local name=$1 log=$STATE/$1.log; shift
  if [[ -f $log ]] && (($(stat -c %s "$log") > 10485760)); then mv -f "$log" "$log.1"; fi
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done 2>/dev/null
    exec setsid nohup "$@" >>"$log" 2>&1 </dev/null
  ) &
  echo $! >"$STATE/$name.pid"
}

# Pid from NAME.pid if that process is alive and still runs NAME (pids get reused).
our_pid() {
  local f=$STATE/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "$1" ]] && echo "$pid"
}

up_postgres() {
  pg_ok && return
  # Its complaints (e.g. "already running" while still starting) are shown, not
  # fatal: the wait below decides.
  # shellcheck disable=SC2046 # one directory per installed major version
  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start >/dev/null ||
    echo "services.sh: pg_ctlcluster start failed; waiting for PostgreSQL anyway" >&2
  wait_for postgresql 60 "" "" pg_ok
}

up_redis() {
  redis_ok && return
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
  wait_for redis 60 /var/log/redis/ci.log "" redis_ok
}

up_tansu() {
  # Missing, another version, or built without an engine the tests use: (re)install.
  tansu_build_ok || cargo_install tansu "tansu@$TANSU_VERSION" "${TANSU_FEATURES[@]}"
  if ! listening "$KAFKA_PORT"; then
    # Memory storage: fast, but a restart loses topics, messages and offsets.
    RUST_LOG=${TANSU_LOG:-info} start_daemon tansu tansu broker \
      --listener-url "tcp://$HOST:$KAFKA_PORT" \
      --advertised-listener-url "tcp://$HOST:$KAFKA_PORT" \
      --storage-engine memory://tansu/
    wait_for tansu 30 "$STATE/tansu.log" "$STATE/tansu.pid" kafka_ok
  else
    wait_for "kafka on :$KAFKA_PORT" 30 "$STATE/tansu.log" "" kafka_ok
  fi
}

write_garage_conf() {
  local dir=$STATE/garage secret
  mkdir -p "$dir/meta" "$dir/data"
  # The RPC secret is generated once and kept, so restarts reuse the metadata.
  if [[ ! -s $dir/rpc_secret ]]; then
    (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$dir/rpc_secret")
  fi
  secret=$(cat "$dir/rpc_secret")
  (umask 077; cat >"$GARAGE_CONF.tmp" <<EOF
# Single-node Garage for reportd's tests (written by scripts/services.sh).
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "$HOST:$RPC_PORT"
rpc_public_addr = "$HOST:$RPC_PORT"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "$HOST:$S3_PORT"

[admin]
api_bind_addr = "$HOST:$ADMIN_PORT"
EOF
  )
  mv "$GARAGE_CONF.tmp" "$GARAGE_CONF"
}

up_garage() {
  garage_build_ok || cargo_install garage "garage@$GARAGE_VERSION" "${GARAGE_FEATURES[@]}"
  write_garage_conf
  local g=(garage -c "$GARAGE_CONF") log=$STATE/garage-init.log
  : >"$log"
  if ! listening "$S3_PORT"; then
    # Garage logs every S3 request at info: handy when a test fails (start_daemon rotates).
    RUST_LOG=${GARAGE_LOG:-info} start_daemon garage "${g[@]}" server
    wait_for garage 60 "$STATE/garage.log" "$STATE/garage.pid" garage_rpc_ok
  fi
  # Layout: assign this node a role once; later runs find it assigned.
  if [[ $("${g[@]}" status 2>/dev/null) == *"NO ROLE ASSIGNED"* ]]; then
    local node version
    node=$("${g[@]}" node id -q | cut -d@ -f1)
    version=$("${g[@]}" layout show | sed -n 's/^Current cluster layout version: //p')
    run_logged "$log" "${g[@]}" layout assign -z dc1 -c 1G "$node"
    run_logged "$log" "${g[@]}" layout apply --version $((version + 1))
  fi
  wait_for "garage layout" 60 "$STATE/garage.log" "" garage_ok
  "${g[@]}" bucket info "$BUCKET" >/dev/null 2>&1 ||
    run_logged "$log" "${g[@]}" bucket create "$BUCKET"
  # Key names are not unique in Garage, so the key is found again by its saved id.
  local KEY_ID="" KEY_SECRET="" info
  # shellcheck source=/dev/null
  [[ -f $KEY_FILE ]] && . "$KEY_FILE"
  if [[ -z $KEY_ID ]] || ! "${g[@]}" key info "$KEY_ID" >/dev/null 2>&1; then
    # A key of that name may exist already (e.g. the key file was lost); reuse it if unique.
    info=$("${g[@]}" key info "$KEY_NAME" --show-secret 2>/dev/null) ||
      info=$("${g[@]}" key create "$KEY_NAME" 2>>"$log") || die "garage key create failed (log: $log)"
    KEY_ID=$(sed -n 's/^Key ID: *//p' <<<"$info")
    KEY_SECRET=$(sed -n 's/^Secret key: *//p' <<<"$info")
    [[ -n $KEY_ID && -n $KEY_SECRET ]] || die "could not read the garage key from: $info"
    (umask 077; printf 'KEY_ID=%s\nKEY_SECRET=%s\n' "$KEY_ID" "$KEY_SECRET" >"$KEY_FILE")
  fi
  run_logged "$log" "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID"
}

cmd_up() {
  command -v curl >/dev/null || die "curl is needed"
  mkdir -p "$STATE"
  # Serialise concurrent runs (two test jobs on one machine).
  exec 9>"$STATE/lock"
  flock 9
  up_postgres
  up_redis
  up_tansu
  up_garage
  cat <<EOF
postgres  $HOST:$PG_PORT  (postgres://postgres@$HOST:$PG_PORT/test)
redis     $HOST:$REDIS_PORT  (redis://$HOST:$REDIS_PORT)
kafka     $HOST:$KAFKA_PORT  (tansu, memory storage; log $STATE/tansu.log)
s3        http://$HOST:$S3_PORT  (garage, region garage, bucket $BUCKET; admin $HOST:$ADMIN_PORT)
state     $STATE
use:      eval "\$($0 env)"
EOF
}

stop_one() {
  local name=$1 pid
  if pid=$(our_pid "$name"); then
    kill "$pid"
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS < deadline)) || { kill -9 "$pid" 2>/dev/null || true; break; }
      sleep 0.2
    done
    echo "$name stopped (pid $pid)"
  else
    echo "$name: not started by this script"
  fi
  rm -f "$STATE/$name.pid"
}

cmd_down() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock 9
  stop_one tansu
  stop_one garage
}

cmd_status() {
  local bad=0
  line() { # NAME ADDRESS CHECK...
    local name=$1 addr=$2; shift 2
    if "$@"; then printf '%-9s up    %s\n' "$name" "$addr"
    else printf '%-9s down  %s\n' "$name" "$addr"; bad=1; fi
  }
  line postgres "$HOST:$PG_PORT" pg_ok
  line redis "$HOST:$REDIS_PORT" redis_ok
  line kafka "$HOST:$KAFKA_PORT" kafka_ok
  line s3 "http://$HOST:$S3_PORT" garage_ok
  return $bad
}

cmd_env() {
  [[ -f $KEY_FILE ]] || die "no S3 key in $KEY_FILE yet; run: $0 up"
  local KEY_ID KEY_SECRET tansu garage redis
  # shellcheck source=/dev/null
  . "$KEY_FILE"
  tansu=$(command -v tansu) || die "tansu not installed; run: $0 up"
  garage=$(command -v garage) || die "garage not installed; run: $0 up"
  redis=$(command -v redis-server) || die "redis-server not found"
  local vars=(
    REPORTD__DATABASE__URL="postgres://postgres@$HOST:$PG_PORT/test"
    REPORTD__QUEUE__BACKEND=kafka
    REPORTD__QUEUE__BROKERS="$HOST:$KAFKA_PORT"
    REPORTD__CACHE__BACKEND=redis
    REPORTD__CACHE__REDIS_URL="redis://$HOST:$REDIS_PORT"
    REPORTD__STORAGE__BACKEND=s3
    REPORTD__STORAGE__ENDPOINT="http://$HOST:$S3_PORT"
    REPORTD__STORAGE__REGION=garage
    REPORTD__STORAGE__BUCKET="$BUCKET"
    REPORTD__STORAGE__ACCESS_KEY_ID="$KEY_ID"
    REPORTD__STORAGE__SECRET_ACCESS_KEY="$KEY_SECRET"
    REPORTD__STORAGE__PATH_STYLE=true
    REPORTD__STORAGE__ALLOW_HTTP=true
    REPORTD_TEST_SERVICES=1
    REPORTD_TEST_PG_ADMIN_URL="postgres://postgres@$HOST:$PG_PORT/postgres"
    REPORTD_TEST_REDIS_SERVER="$redis"
    REPORTD_TEST_TANSU="$tansu"
    REPORTD_TEST_GARAGE="$garage"
    REPORTD_TEST_GARAGE_CONFIG="$GARAGE_CONF"
  )
  local v
  for v in "${vars[@]}"; do printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"; done
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
