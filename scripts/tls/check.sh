#!/usr/bin/env bash
# End-to-end check of the TLS endpoints of `scripts/services.sh up --tls` with
# real clients, printing each command's outcome:
#   psql sslmode=verify-full (and: no TLS, wrong password, unknown CA refused)
#   redis-cli --tls (and: no password, wrong password, plain TCP refused)
#   curl --aws-sigv4 over https, then scripts/tls/check.py: boto3 put/get and a
#   presigned GET, librdkafka SASL_SSL with PLAIN, SCRAM-SHA-256 and -512.
# Python packages (boto3, confluent-kafka: its wheel bundles librdkafka with SSL
# and SASL) go to a venv in the state dir, installed from PyPI on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(scripts/services.sh env)"
[[ ${REPORTD_TEST_TLS:-} == 1 ]] || { echo "no TLS endpoints: run scripts/services.sh up --tls" >&2; exit 1; }
STATE=${REPORTD_SERVICES_DIR:-$HOME/.local/state/reportd-services}
CA=$REPORTD_TEST_TLS_CA
fail=0

# expect ok|refused NAME CMD...: run CMD, show its output, compare the outcome.
expect() {
  local want=$1 name=$2 out rc=0; shift 2
  out=$("$@" 2>&1) || rc=$?
  # redis-cli exits 0 on NOAUTH/WRONGPASS: only PONG counts as a success.
  if [[ $1 == redis-cli && $out != PONG ]]; then rc=1; fi
  local got=ok; ((rc == 0)) || got=refused
  if [[ $got == "$want" ]]; then echo "ok   $name"; else echo "FAIL $name (wanted $want)"; fail=1; fi
  # shellcheck disable=SC2001 # indent every line
  sed 's/^/       /' <<<"$out" | head -n 4
}

pg_url=$REPORTD_TEST_TLS_PG_URL
pg_pw=${pg_url#postgres://*:}
pg_pw=${pg_pw%%@*}
expect ok "psql verify-full" psql -XAtc "select 'user=' || current_user || ' ssl=' || ssl || ' ' || version from pg_stat_ssl where pid = pg_backend_pid()" "$pg_url"
expect refused "psql without TLS" psql -XAtc 'select 1' "${pg_url%%\?*}?sslmode=disable"
expect refused "psql wrong password" psql -XAtc 'select 1' "${pg_url/:$pg_pw@/:wrong@}"
expect refused "psql with the system CAs only" psql -XAtc 'select 1' "${pg_url%%sslrootcert=*}sslrootcert=/etc/ssl/certs/ca-certificates.crt"

pw=${REPORTD_TEST_TLS_REDIS_URL#rediss://:}
pw=${pw%%@*}
expect ok "redis-cli --tls ping" redis-cli --tls --cacert "$CA" -h localhost -p 6380 -a "$pw" --no-auth-warning ping
expect refused "redis-cli --tls without password" redis-cli --tls --cacert "$CA" -h localhost -p 6380 ping
expect refused "redis-cli --tls wrong password" redis-cli --tls --cacert "$CA" -h localhost -p 6380 -a wrong --no-auth-warning ping
expect refused "redis-cli without TLS" redis-cli -h localhost -p 6380 -a "$pw" --no-auth-warning ping

s3=$REPORTD_TEST_TLS_S3_ENDPOINT/$REPORTD__STORAGE__BUCKET
# Garage wants x-amz-content-sha256, which curl 7.88 does not add by itself.
sigv4=(--aws-sigv4 "aws:amz:$REPORTD__STORAGE__REGION:s3"
  --user "$REPORTD__STORAGE__ACCESS_KEY_ID:$REPORTD__STORAGE__SECRET_ACCESS_KEY"
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
expect ok "curl --aws-sigv4 PUT over https" curl -sSf --cacert "$CA" "${sigv4[@]}" -T /etc/hostname "$s3/tls-check/curl.txt"
expect ok "curl --aws-sigv4 GET over https" curl -sSf --cacert "$CA" "${sigv4[@]}" "$s3/tls-check/curl.txt"
expect refused "curl unsigned GET over https" curl -sSf --cacert "$CA" "$s3/tls-check/curl.txt"
expect refused "curl without the private CA" curl -sSf "${sigv4[@]}" "$s3/tls-check/curl.txt"
curl -sSf --cacert "$CA" "${sigv4[@]}" -X DELETE "$s3/tls-check/curl.txt" >/dev/null || true

venv=$STATE/venv-tls-check
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import boto3, confluent_kafka' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check boto3 confluent-kafka
fi
"$venv/bin/python" -c 'import confluent_kafka as c; print("confluent-kafka", c.version(), "librdkafka", c.libversion()[0])'
"$venv/bin/python" scripts/tls/check.py || fail=1
exit $fail
