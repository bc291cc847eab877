#!/usr/bin/env bash
# Real backing services for reportd's tests, on loopback, without Docker:
# PostgreSQL, Redis, tansu (Kafka API) and Garage (S3 API).
#
#   scripts/services.sh up [--tls]  start what is down (installing tansu/garage once);
#                                   --tls also starts the TLS endpoints below
#   scripts/services.sh down        stop what this script started (tansu, garage, TLS endpoints)
#   scripts/services.sh status      one line per service; non-zero if any is down
#   scripts/services.sh env         export lines: eval "$(scripts/services.sh env)"
#
# With --tls, beside the plain endpoints (unchanged), on loopback, with a private
# CA generated once (state dir tls/ca.pem) and passwords generated once:
#   PostgreSQL 15  localhost:5433  private instance, ssl=on, scram-sha-256 over hostssl only
#   Redis          localhost:6380  TLS only (--port 0), requirepass
#   S3             localhost:3443  stunnel (TLS) -> garage 127.0.0.1:3900, Host header untouched
#   Kafka          localhost:9093  stunnel (TLS) -> a second tansu on 127.0.0.1:9094 with
#                                  --authentication (SASL SCRAM-SHA-256/512; tansu 0.6 offers no
#                                  PLAIN), sqlite storage
#   Kafka, PLAIN   localhost:9096  stunnel (TLS) -> scripts/sasl-plain-proxy.py on 127.0.0.1:9097
#                                  (SASL PLAIN, same user and password) -> a third tansu on
#                                  127.0.0.1:9098, memory storage
# See docs/services.md.
#
# State (configs, data, logs, pid files, the S3 key, the CA and passwords) lives
# outside the clone in ${REPORTD_SERVICES_DIR:-~/.local/state/reportd-services}.
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
# Garage runs on db_engine = "lmdb", its default and fastest metadata engine
# (sqlite spent more CPU per small PUT); k2v and metrics (Prometheus) are unused.
GARAGE_FEATURES=(bundled-libs lmdb sqlite)
# tansu is built at opt-level 1: 15% less CPU to build, and no measurable cost
# as a broker (librdkafka, 20k messages: same throughput, same broker CPU, same
# commit latency). Garage keeps the default 3: at 1 its S3 PUT/GET were 30-40%
# slower. Neither crate sets a [profile], so the rest is cargo's release default
# (no LTO, 16 codegen units, no debug info). See docs/services.md.
TANSU_OPT_LEVEL=${REPORTD_TANSU_OPT_LEVEL:-1}
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
  echo "installing $crate ($features${CARGO_PROFILE_RELEASE_OPT_LEVEL:+, opt-level $CARGO_PROFILE_RELEASE_OPT_LEVEL}) into $CARGO_BIN (a few minutes; log: $log)..." >&2
  local t0=$SECONDS
  run_logged "$log" bash -c 'time "$@"' _ cargo install --locked --force \
    --no-default-features --features "$features" "$crate"
  echo "installed $crate in $((SECONDS - t0))s" >&2
  hash -r
  command -v "$bin" >/dev/null || die "$bin still not on PATH after cargo install"
}

# Install what is missing or wrong, tansu and Garage side by side: on 2 cores
# each build spends minutes on one crate at a time (tansu-storage, then the
# link; garage_model, then the link), which the other build fills.
install_tools() {
  local names=() pids=() i failed=0
  if ! tansu_build_ok; then
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$TANSU_OPT_LEVEL \
      cargo_install tansu "tansu@$TANSU_VERSION" "${TANSU_FEATURES[@]}" &
    names+=(tansu) pids+=($!)
  fi
  if ! garage_build_ok; then
    cargo_install garage "garage@$GARAGE_VERSION" "${GARAGE_FEATURES[@]}" &
    names+=(garage) pids+=($!)
  fi
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "services.sh: installing ${names[$i]} failed" >&2; failed=1; }
  done
  ((failed == 0)) || exit 1
  hash -r
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

# True when garage is version $GARAGE_VERSION and has the lmdb engine.
# (`garage --version` prints e.g. "garage cargo:2.5.0 [features: bundled-libs, lmdb]".)
garage_build_ok() {
  local v
  v=$(garage --version 2>/dev/null) || return 1
  [[ $v == *"$GARAGE_VERSION "* && $v == *"[features:"*lmdb* ]]
}

# Start a daemon detached from this script (setsid: own session, survives the
# caller's exit and Ctrl-C), logging to $STATE/NAME.log, pid in $STATE/NAME.pid.
# Inherited descriptors above 2 are closed first: the daemon must not keep the
# lock (fd 9) or a caller's pipe open, or later runs and callers would hang.
# A log above 10 MB is rotated to NAME.log.1 at start (Garage logs each request).
# DAEMON_DIR=DIR start_daemon ... runs the daemon in DIR (default: the caller's).
start_daemon() {
  local name=$1 log=$STATE/$1.log; shift
  if [[ -f $log ]] && (($(stat -c %s "$log") > 10485760)); then mv -f "$log" "$log.1"; fi
  (
    close_fds
    [[ -z ${DAEMON_DIR:-} ]] || cd "$DAEMON_DIR"
    exec setsid nohup "$@" >>"$log" 2>&1 </dev/null
  ) &
  echo $! >"$STATE/$name.pid"
}

# Close this (sub)shell's descriptors above 2: a child must not inherit the lock.
close_fds() {
  local fd
  for fd in "/proc/$BASHPID/fd"/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-"; fi
  done 2>/dev/null
}

# Pid from NAME.pid if that process is alive and still runs COMM (default NAME;
# pids get reused).
our_pid() {
  local f=$STATE/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "${2:-$1}" ]] && echo "$pid"
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
  tansu_build_ok || CARGO_PROFILE_RELEASE_OPT_LEVEL=$TANSU_OPT_LEVEL \
    cargo_install tansu "tansu@$TANSU_VERSION" "${TANSU_FEATURES[@]}"
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
db_engine = "lmdb"
replication_factor = 1
# What is stored is compressed already (XLSX is a zip, PDF streams are
# deflated, payloads are zstd): zstd over it again spends CPU for nothing.
compression_level = "none"
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

# ---------------------------------------------------------------------------
# TLS endpoints (up --tls). Every client-facing address is "localhost", the
# name in the server certificate (with IP 127.0.0.1 and ::1).
TLS_HOST=localhost
TLS_PG_PORT=5433 TLS_REDIS_PORT=6380 TLS_S3_PORT=3443 TLS_KAFKA_PORT=9093
SASL_KAFKA_PORT=9094 # the SASL tansu behind stunnel: plain TCP, loopback only
SASL_SETUP_PORT=9095 # a short-lived tansu without --authentication that writes the SCRAM users
TLS_KAFKA_PLAIN_PORT=9096 # stunnel (TLS) in front of the SASL/PLAIN proxy
PLAIN_PROXY_PORT=9097     # scripts/sasl-plain-proxy.py: SASL PLAIN, then bytes to the broker below
PLAIN_KAFKA_PORT=9098     # a third tansu (memory storage), advertised at localhost:$TLS_KAFKA_PLAIN_PORT
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TLS_USER=reportd     # PostgreSQL role (owner of database reportd) and Kafka user
TLS_DIR=$STATE/tls
TLS_CA=$TLS_DIR/ca.pem
TLS_WANTED=$STATE/tls-enabled # written by up --tls, removed by down: up and env follow it
SECRETS=$TLS_DIR/secrets.env  # PG_PASSWORD=, REDIS_PASSWORD=, KAFKA_PASSWORD= (hex, safe to source)
STUNNEL_CONF=$STATE/stunnel/stunnel.conf
REDIS_TLS_CONF=$STATE/redis-tls/redis.conf
PG_PASSWORD="" REDIS_PASSWORD="" KAFKA_PASSWORD=""

# The private PostgreSQL runs as a non-root user (the server refuses root). As
# root that is the postgres user, and its files live in postgres's home, since
# it cannot reach a state dir under /root; otherwise in the state dir.
PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
PG_MAJOR=$(basename "$(dirname "${PG_BIN:-/none/x}")")
if ((EUID == 0)); then
  PG_OS_USER=postgres
  PG_TLS_DIR=$(getent passwd postgres | cut -d: -f6)/reportd-services
else
  PG_OS_USER=$(id -un)
  PG_TLS_DIR=$STATE/postgres-tls
fi
PG_TLS_DATA=$PG_TLS_DIR/$PG_MAJOR/data

rand_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

load_secrets() {
  [[ -f $SECRETS ]] || return 1
  # shellcheck source=/dev/null
  . "$SECRETS"
  [[ -n $PG_PASSWORD && -n $REDIS_PASSWORD && -n $KAFKA_PASSWORD ]]
}

ensure_secrets() {
  load_secrets && return
  (umask 077; printf 'PG_PASSWORD=%s\nREDIS_PASSWORD=%s\nKAFKA_PASSWORD=%s\n' \
    "$(rand_hex)" "$(rand_hex)" "$(rand_hex)" >"$SECRETS.tmp")
  mv -f "$SECRETS.tmp" "$SECRETS"
  load_secrets
}

server_cert_ok() {
  local d=$TLS_DIR
  [[ -s $d/server.pem && -s $d/server.key ]] &&
    openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$d/server.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 &&
    [[ $(openssl x509 -in "$d/server.pem" -noout -ext subjectAltName 2>/dev/null) == *DNS:localhost*"IP Address:127.0.0.1"* ]]
}

# The private CA (ca.key never leaves the state dir) and one server certificate
# for localhost, 127.0.0.1 and ::1 that every endpoint uses. Sets TLS_CHANGED=1
# when it issued a new one (running TLS daemons are then restarted).
TLS_CHANGED=0
ensure_tls_certs() {
  local d=$TLS_DIR log=$STATE/tls-init.log
  command -v openssl >/dev/null || die "openssl is needed for --tls"
  mkdir -p "$d"
  if [[ ! -s $d/ca.key || ! -s $d/ca.pem ]]; then
    (umask 077; run_logged "$log" openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 \
      -days 3650 -subj "/CN=reportd test CA ($(hostname))" \
      -keyout "$d/ca.key.tmp" -out "$d/ca.pem.tmp" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash")
    chmod 644 "$d/ca.pem.tmp"
    mv -f "$d/ca.key.tmp" "$d/ca.key"
    mv -f "$d/ca.pem.tmp" "$d/ca.pem"
    rm -f "$d/server.pem"
  fi
  server_cert_ok && return
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" \
    "authorityKeyIdentifier=keyid:always" >"$d/server.ext"
  (umask 077; run_logged "$log" openssl req -new -newkey rsa:2048 -nodes -sha256 \
    -subj "/CN=localhost" -keyout "$d/server.key.tmp" -out "$d/server.csr")
  run_logged "$log" openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
    -set_serial "0x$(rand_hex)" -days 825 -sha256 -extfile "$d/server.ext" -out "$d/server.pem.tmp"
  mv -f "$d/server.key.tmp" "$d/server.key"
  mv -f "$d/server.pem.tmp" "$d/server.pem"
  rm -f "$d/server.csr"
  TLS_CHANGED=1
}

# True when this machine has an IPv6 loopback; the TLS endpoints then listen on ::1 too.
have_ipv6_lo() { grep -qi '^0\{31\}1 .* lo$' /proc/net/if_inet6 2>/dev/null; }

# True when a TLS handshake on 127.0.0.1:PORT verifies against the CA for "localhost".
tls_handshake_ok() {
  timeout 5 openssl s_client -connect "$HOST:$1" -servername "$TLS_HOST" -verify_hostname "$TLS_HOST" \
    -verify_return_error -CAfile "$TLS_CA" </dev/null >/dev/null 2>&1
}

# --- PostgreSQL with ssl=on on :5433 ----------------------------------------
as_pg() {
  if ((EUID == 0)); then (cd / && runuser -u "$PG_OS_USER" -- "$@"); else "$@"; fi
}

# pg_put FILE MODE < CONTENT: write a file the server owns; true when it changed.
pg_put() {
  local f=$1 mode=$2
  cat >"$f.new"
  if [[ -f $f ]] && cmp -s "$f" "$f.new"; then rm -f "$f.new"; return 1; fi
  chmod "$mode" "$f.new"
  if ((EUID == 0)); then chown "$PG_OS_USER:" "$f.new"; fi
  mv -f "$f.new" "$f"
}

pg_tls_url() { # [DATABASE] [PASSWORD]
  printf 'postgres://%s%s@%s:%s/%s?sslmode=verify-full&sslrootcert=%s' "$TLS_USER" "${2:+:$2}" \
    "$TLS_HOST" "$TLS_PG_PORT" "${1:-reportd}" "$TLS_CA"
}

# As a client would: TLS verified against the CA for localhost, scram password.
pg_tls_ok() {
  [[ $(PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 psql -XAtq "$(pg_tls_url)" -c 'select 1' 2>/dev/null) == 1 ]]
}

# Superuser over the Unix socket in the data dir (0700: only its owner and root get there).
pg_tls_psql() {
  PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h "$PG_TLS_DATA" -p "$TLS_PG_PORT" -U postgres "$@"
}

up_postgres_tls() {
  [[ -n $PG_BIN && -x $PG_BIN/initdb ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
  id -u "$PG_OS_USER" >/dev/null 2>&1 || die "no user $PG_OS_USER to run the private PostgreSQL as"
  local data=$PG_TLS_DATA log=$PG_TLS_DIR/postgres.log changed=0
  if ((EUID == 0)); then
    install -d -o "$PG_OS_USER" -g "$(id -gn "$PG_OS_USER")" -m 700 "$PG_TLS_DIR" "$PG_TLS_DIR/$PG_MAJOR"
  else
    mkdir -p "$PG_TLS_DIR/$PG_MAJOR"
    chmod 700 "$PG_TLS_DIR" "$PG_TLS_DIR/$PG_MAJOR"
  fi
  ln -sfn "$log" "$STATE/postgres-tls.log"
  if [[ ! -s $data/PG_VERSION ]]; then
    rm -rf "$data"
    echo "+ initdb $data" >>"$STATE/tls-init.log"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C --auth-local=trust \
      --auth-host=reject >>"$STATE/tls-init.log" 2>&1 || {
      tail -n 20 "$STATE/tls-init.log" >&2
      die "initdb failed (log: $STATE/tls-init.log)"
    }
  fi
  # The server reads its own copy of the key: it must be owned by it, mode 0600.
  pg_put "$data/server.crt" 644 <"$TLS_DIR/server.pem" && changed=1
  pg_put "$data/server.key" 600 <"$TLS_DIR/server.key" && changed=1
  local listen=$HOST
  if have_ipv6_lo; then listen+=",::1"; fi
  pg_put "$data/reportd.conf" 600 <<EOC && changed=1
# Written by scripts/services.sh (included from postgresql.conf).
port = $TLS_PG_PORT
listen_addresses = '$listen'
unix_socket_directories = '$data'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 200
# A test database: losing it in an OS crash is fine; killed processes lose nothing.
fsync = off
synchronous_commit = off
full_page_writes = off
EOC
  pg_put "$data/pg_hba.conf" 600 <<EOC && changed=1
# Written by scripts/services.sh.
# Unix socket in the 0700 data dir, reachable by its owner and root only: setup.
local     all  all                 trust
# TCP: TLS and a scram-sha-256 password, nothing else.
hostssl   all  all  127.0.0.1/32   scram-sha-256
hostssl   all  all  ::1/128        scram-sha-256
hostnossl all  all  all            reject
EOC
  if ! grep -qx "include_if_exists = 'reportd.conf'" "$data/postgresql.conf"; then
    echo "include_if_exists = 'reportd.conf'" >>"$data/postgresql.conf"
  fi
  if ! pg_isready -q -h "$data" -p "$TLS_PG_PORT" -t 2; then
    listening "$TLS_PG_PORT" && die "port $TLS_PG_PORT is taken by something else than $data"
    # A postmaster.pid left by a machine restart can name a pid now in use by
    # another process; the server would then refuse to start.
    local pid
    if [[ -f $data/postmaster.pid ]]; then
      pid=$(head -n 1 "$data/postmaster.pid")
      [[ $(ps -o comm= -p "$pid" 2>/dev/null) == postgres ]] || rm -f "$data/postmaster.pid"
    fi
    (close_fds; as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 -s start) </dev/null >>"$STATE/tls-init.log" 2>&1 || {
      tail -n 30 "$log" >&2
      die "private PostgreSQL did not start (log: $log)"
    }
  elif ((changed)); then
    # Certificates and pg_hba.conf are re-read on reload (a port change needs: down, up).
    as_pg "$PG_BIN/pg_ctl" -D "$data" -s reload >>"$STATE/tls-init.log" 2>&1
  fi
  # Role and database, and the password from the state dir (set again on each run,
  # so a new state dir with new secrets still matches).
  pg_tls_psql -d postgres >>"$STATE/tls-init.log" 2>&1 <<EOS || die "setting up role $TLS_USER failed (log: $STATE/tls-init.log)"
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$TLS_USER') THEN
    CREATE ROLE $TLS_USER;
  END IF;
END\$\$;
ALTER ROLE $TLS_USER WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SELECT 'CREATE DATABASE reportd OWNER $TLS_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'reportd')\gexec
EOS
  wait_for postgres-tls 30 "$log" "" pg_tls_ok
}

stop_postgres_tls() {
  if [[ -f $PG_TLS_DATA/postmaster.pid ]] && pg_isready -q -h "$PG_TLS_DATA" -p "$TLS_PG_PORT" -t 2; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TLS_DATA" -m fast -w -s stop && echo "postgres-tls stopped"
  else
    echo "postgres-tls: not running"
  fi
}

# --- Redis over TLS on :6380 --------------------------------------------------
redis_tls_ok() {
  [[ $(REDISCLI_AUTH=$REDIS_PASSWORD timeout 3 redis-cli --tls --cacert "$TLS_CA" \
    -h "$TLS_HOST" -p "$TLS_REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

up_redis_tls() {
  mkdir -p "$STATE/redis-tls"
  local bind=$HOST
  if have_ipv6_lo; then bind+=" ::1"; fi
  (umask 077; cat >"$REDIS_TLS_CONF.new" <<EOC
# Written by scripts/services.sh: TLS only, password, no persistence.
port 0
tls-port $TLS_REDIS_PORT
bind $bind
tls-cert-file $TLS_DIR/server.pem
tls-key-file $TLS_DIR/server.key
tls-ca-cert-file $TLS_CA
tls-auth-clients no
requirepass $REDIS_PASSWORD
save ""
appendonly no
dir $STATE/redis-tls
daemonize no
EOC
  )
  local changed=0
  cmp -s "$REDIS_TLS_CONF" "$REDIS_TLS_CONF.new" || changed=1
  mv -f "$REDIS_TLS_CONF.new" "$REDIS_TLS_CONF"
  if ((changed || TLS_CHANGED)) || ! redis_tls_ok; then
    if listening "$TLS_REDIS_PORT"; then
      our_pid redis-tls redis-server >/dev/null ||
        die "port $TLS_REDIS_PORT is taken by a process this script did not start"
      stop_one redis-tls redis-server >/dev/null
    fi
    start_daemon redis-tls redis-server "$REDIS_TLS_CONF"
    wait_for redis-tls 30 "$STATE/redis-tls.log" "$STATE/redis-tls.pid" redis_tls_ok
  fi
}

# --- tansu with SASL on :9094, behind stunnel on :9093 --------------------------
# The SASL broker stores topics and SCRAM credentials in sqlite (memory storage
# keeps no credentials). Its advertised listener is the TLS address, so clients
# come back through stunnel after metadata.
sasl_broker() { # LISTEN_PORT [--authentication]
  local port=$1; shift
  echo tansu broker --listener-url "tcp://$HOST:$port" \
    --advertised-listener-url "tcp://$TLS_HOST:$TLS_KAFKA_PORT" \
    --storage-engine sqlite://tansu.db "$@"
}

up_tansu_sasl() {
  local dir=$STATE/tansu-sasl log=$STATE/tls-init.log m stamp
  mkdir -p "$dir"
  # Which user and password the running broker's users were written with.
  stamp=$(printf '%s:%s' "$TLS_USER" "$KAFKA_PASSWORD" | sha256sum | cut -c1-64)
  if listening "$SASL_KAFKA_PORT"; then
    our_pid tansu-sasl tansu >/dev/null ||
      die "port $SASL_KAFKA_PORT is taken by a process this script did not start"
    [[ $(cat "$dir/users.sha256" 2>/dev/null) == "$stamp" ]] && return
    stop_one tansu-sasl tansu >/dev/null # the password changed: users are written again below
  fi
  # A broker with --authentication answers nothing but SASL and ApiVersions
  # before a client authenticates, and the tansu CLI has no SASL: a broker
  # without it, on the same sqlite file, takes the users first.
  # shellcheck disable=SC2046 # sasl_broker prints a plain word list
  DAEMON_DIR=$dir RUST_LOG=warn start_daemon tansu-sasl-setup $(sasl_broker "$SASL_SETUP_PORT")
  wait_for tansu-sasl-setup 30 "$STATE/tansu-sasl-setup.log" "$STATE/tansu-sasl-setup.pid" \
    listening "$SASL_SETUP_PORT"
  for m in scram256 scram512; do
    echo "+ tansu user create --mechanism $m $TLS_USER (password from $SECRETS)" >>"$log"
    tansu user create --broker "tcp://$HOST:$SASL_SETUP_PORT" --mechanism "$m" \
      "$TLS_USER" "$KAFKA_PASSWORD" >>"$log" 2>&1 || die "tansu user create failed (log: $log)"
  done
  stop_one tansu-sasl-setup tansu >/dev/null
  echo "$stamp" >"$dir/users.sha256"
  # Warnings only: at info tansu logs every request, and a client retrying a
  # refused login reconnects every 50 ms (hundreds of MB in minutes).
  # shellcheck disable=SC2046
  DAEMON_DIR=$dir RUST_LOG=${TANSU_SASL_LOG:-warn} start_daemon tansu-sasl \
    $(sasl_broker "$SASL_KAFKA_PORT" --authentication)
  wait_for tansu-sasl 30 "$STATE/tansu-sasl.log" "$STATE/tansu-sasl.pid" listening "$SASL_KAFKA_PORT"
}

# --- SASL/PLAIN Kafka on :9096 -------------------------------------------------
# tansu 0.6 has no PLAIN: scripts/sasl-plain-proxy.py answers SaslHandshake and
# SaslAuthenticate (PLAIN, the Kafka user and password of the SCRAM broker) and
# then passes bytes to a plain tansu whose advertised listener is the TLS address.
kafka_plain_ok() { listening "$PLAIN_KAFKA_PORT" && listening "$PLAIN_PROXY_PORT"; }

up_kafka_plain() {
  local dir=$STATE/kafka-plain
  mkdir -p "$dir"
  (umask 077; printf '%s' "$KAFKA_PASSWORD" >"$dir/password.new")
  if ! cmp -s "$dir/password" "$dir/password.new"; then
    mv -f "$dir/password.new" "$dir/password"
    stop_one sasl-plain-proxy python3 >/dev/null 2>&1 || true
  else
    rm -f "$dir/password.new"
  fi
  if ! listening "$PLAIN_KAFKA_PORT"; then
    RUST_LOG=${TANSU_PLAIN_LOG:-warn} start_daemon tansu-plain tansu broker \
      --listener-url "tcp://$HOST:$PLAIN_KAFKA_PORT" \
      --advertised-listener-url "tcp://$TLS_HOST:$TLS_KAFKA_PLAIN_PORT" \
      --storage-engine memory://tansu/
    wait_for tansu-plain 30 "$STATE/tansu-plain.log" "$STATE/tansu-plain.pid" listening "$PLAIN_KAFKA_PORT"
  fi
  if ! listening "$PLAIN_PROXY_PORT"; then
    start_daemon sasl-plain-proxy python3 "$SCRIPTS_DIR/sasl-plain-proxy.py" \
      "$HOST:$PLAIN_PROXY_PORT" "$HOST:$PLAIN_KAFKA_PORT" "$TLS_USER" "$dir/password"
    wait_for sasl-plain-proxy 30 "$STATE/sasl-plain-proxy.log" "$STATE/sasl-plain-proxy.pid" \
      listening "$PLAIN_PROXY_PORT"
  fi
}

# --- stunnel: S3 on :3443 and Kafka on :9093 and :9096 ------------------------
ensure_stunnel() {
  command -v stunnel4 >/dev/null && return
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
    die "stunnel4 is needed: apt-get install stunnel4"
  fi
  local log=$STATE/install-stunnel4.log
  echo "installing stunnel4 (apt-get, log: $log)..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y stunnel4 >>"$log" 2>&1 || {
    run_logged "$log" apt-get update
    DEBIAN_FRONTEND=noninteractive run_logged "$log" apt-get install -y stunnel4
  }
}

stunnel_ok() {
  tls_handshake_ok "$TLS_S3_PORT" && tls_handshake_ok "$TLS_KAFKA_PORT"
}

up_stunnel() {
  ensure_stunnel
  mkdir -p "$STATE/stunnel"
  local hosts=("$HOST") h name port target services=""
  if have_ipv6_lo; then hosts+=("::1"); fi
  for name in s3 kafka kafka-plain; do
    case $name in
      s3) port=$TLS_S3_PORT target=$HOST:$S3_PORT ;;
      kafka) port=$TLS_KAFKA_PORT target=$HOST:$SASL_KAFKA_PORT ;;
      kafka-plain) port=$TLS_KAFKA_PLAIN_PORT target=$HOST:$PLAIN_PROXY_PORT ;;
    esac
    for h in "${hosts[@]}"; do
      services+="
[$name-$h]
accept = $h:$port
connect = $target"
    done
  done
  cat >"$STUNNEL_CONF.new" <<EOC
; Written by scripts/services.sh: TLS in front of loopback-only plain services.
; Bytes pass through unchanged (the Host header too, which SigV4 signs).
foreground = yes
pid =
syslog = no
debug = warning
cert = $TLS_DIR/server.pem
key = $TLS_DIR/server.key
; Loaded only to keep stunnel from logging "No trusted certificates found": no
; verify option is set, so clients need no certificate.
CAfile = $TLS_CA
sslVersionMin = TLSv1.2
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
$services
EOC
  local changed=0
  cmp -s "$STUNNEL_CONF" "$STUNNEL_CONF.new" || changed=1
  mv -f "$STUNNEL_CONF.new" "$STUNNEL_CONF"
  if our_pid stunnel stunnel4 >/dev/null; then
    ((changed || TLS_CHANGED)) || { wait_for stunnel 30 "$STATE/stunnel.log" "$STATE/stunnel.pid" stunnel_ok; return; }
    stop_one stunnel stunnel4 >/dev/null
  fi
  start_daemon stunnel stunnel4 "$STUNNEL_CONF"
  wait_for stunnel 30 "$STATE/stunnel.log" "$STATE/stunnel.pid" stunnel_ok
}

s3_tls_ok() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$TLS_CA" "https://$TLS_HOST:$TLS_S3_PORT/") || return 1
  [[ $code != 000 ]]
}

kafka_tls_ok() { listening "$SASL_KAFKA_PORT" && tls_handshake_ok "$TLS_KAFKA_PORT"; }

up_tls() {
  touch "$TLS_WANTED"
  ensure_tls_certs
  ensure_secrets
  up_postgres_tls
  up_redis_tls
  up_tansu_sasl
  up_kafka_plain
  up_stunnel
}

cmd_up() {
  local tls=0
  case ${1:-} in
    --tls) tls=1 ;;
    "") ;;
    *) die "usage: $0 up [--tls]" ;;
  esac
  command -v curl >/dev/null || die "curl is needed"
  mkdir -p "$STATE"
  # Serialise concurrent runs (two test jobs on one machine).
  exec 9>"$STATE/lock"
  flock 9
  # Once asked for (until down), the TLS endpoints come back with every up.
  [[ -f $TLS_WANTED ]] && tls=1
  install_tools
  up_postgres
  up_redis
  up_tansu
  up_garage
  if ((tls)); then up_tls; fi
  cat <<EOF
postgres  $HOST:$PG_PORT  (postgres://postgres@$HOST:$PG_PORT/test)
redis     $HOST:$REDIS_PORT  (redis://$HOST:$REDIS_PORT)
kafka     $HOST:$KAFKA_PORT  (tansu, memory storage; log $STATE/tansu.log)
s3        http://$HOST:$S3_PORT  (garage, region garage, bucket $BUCKET; admin $HOST:$ADMIN_PORT)
EOF
  if ((tls)); then
    cat <<EOF
postgres-tls  $TLS_HOST:$TLS_PG_PORT  (private PostgreSQL $PG_MAJOR, ssl=on, user/database $TLS_USER; data $PG_TLS_DATA)
redis-tls     $TLS_HOST:$TLS_REDIS_PORT  (rediss://, password)
s3-tls        https://$TLS_HOST:$TLS_S3_PORT  (stunnel -> garage $HOST:$S3_PORT)
kafka-tls     $TLS_HOST:$TLS_KAFKA_PORT  (SASL_SSL: stunnel -> tansu --authentication on $HOST:$SASL_KAFKA_PORT, user $TLS_USER)
kafka-plain   $TLS_HOST:$TLS_KAFKA_PLAIN_PORT  (SASL_SSL, PLAIN: stunnel -> sasl-plain-proxy.py $HOST:$PLAIN_PROXY_PORT -> tansu $HOST:$PLAIN_KAFKA_PORT)
tls ca        $TLS_CA
EOF
  fi
  cat <<EOF
state     $STATE
use:      eval "\$($0 env)"
EOF
}

stop_one() { # NAME [COMM]
  local name=$1 pid
  if pid=$(our_pid "$name" "${2:-$1}"); then
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
  if [[ -f $TLS_WANTED ]]; then
    stop_one stunnel stunnel4
    stop_one tansu-sasl tansu
    stop_one sasl-plain-proxy python3
    stop_one tansu-plain tansu
    stop_one redis-tls redis-server
    stop_postgres_tls
    rm -f "$TLS_WANTED"
  fi
  if [[ -f $STATE/tansu-sasl-setup.pid ]]; then stop_one tansu-sasl-setup tansu; fi
}

cmd_status() {
  local bad=0
  line() { # NAME ADDRESS CHECK...
    local name=$1 addr=$2; shift 2
    if "$@"; then printf '%-13s up    %s\n' "$name" "$addr"
    else printf '%-13s down  %s\n' "$name" "$addr"; bad=1; fi
  }
  line postgres "$HOST:$PG_PORT" pg_ok
  line redis "$HOST:$REDIS_PORT" redis_ok
  line kafka "$HOST:$KAFKA_PORT" kafka_ok
  line s3 "http://$HOST:$S3_PORT" garage_ok
  if [[ -f $TLS_WANTED ]]; then
    load_secrets || true
    line postgres-tls "$TLS_HOST:$TLS_PG_PORT (sslmode=verify-full, password)" pg_tls_ok
    line redis-tls "rediss://$TLS_HOST:$TLS_REDIS_PORT (password)" redis_tls_ok
    line s3-tls "https://$TLS_HOST:$TLS_S3_PORT" s3_tls_ok
    line kafka-tls "$TLS_HOST:$TLS_KAFKA_PORT (SASL_SSL; broker $HOST:$SASL_KAFKA_PORT)" kafka_tls_ok
    line kafka-plain "$TLS_HOST:$TLS_KAFKA_PLAIN_PORT (SASL_SSL, PLAIN; proxy $HOST:$PLAIN_PROXY_PORT)" kafka_plain_ok
  fi
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
  # After up --tls (until down): the TLS endpoints. The S3 key, region and
  # bucket are the ones above; every certificate is signed by REPORTD_TEST_TLS_CA.
  if [[ -f $TLS_WANTED ]]; then
    load_secrets || die "no TLS secrets in $SECRETS yet; run: $0 up --tls"
    vars+=(
      REPORTD_TEST_TLS=1
      REPORTD_TEST_TLS_CA="$TLS_CA"
      REPORTD_TEST_TLS_PG_URL="$(pg_tls_url reportd "$PG_PASSWORD")"
      REPORTD_TEST_TLS_PG_ADMIN_URL="$(pg_tls_url postgres "$PG_PASSWORD")"
      REPORTD_TEST_TLS_REDIS_URL="rediss://:$REDIS_PASSWORD@$TLS_HOST:$TLS_REDIS_PORT/"
      REPORTD_TEST_TLS_S3_ENDPOINT="https://$TLS_HOST:$TLS_S3_PORT"
      REPORTD_TEST_TLS_KAFKA_BROKERS="$TLS_HOST:$TLS_KAFKA_PORT"
      REPORTD_TEST_TLS_KAFKA_SECURITY_PROTOCOL=SASL_SSL
      REPORTD_TEST_TLS_KAFKA_MECHANISMS="SCRAM-SHA-512,SCRAM-SHA-256"
      REPORTD_TEST_TLS_KAFKA_PLAIN_BROKERS="$TLS_HOST:$TLS_KAFKA_PLAIN_PORT"
      REPORTD_TEST_TLS_KAFKA_USER="$TLS_USER"
      REPORTD_TEST_TLS_KAFKA_PASSWORD="$KAFKA_PASSWORD"
    )
  fi
  local v
  for v in "${vars[@]}"; do printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"; done
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up [--tls]|down|status|env" >&2; exit 2 ;;
esac
