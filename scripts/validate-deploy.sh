#!/usr/bin/env bash
# Validates everything under docker/ offline, without a container engine or a
# cluster (tests/deploy.rs runs the same checks from `cargo test`):
#   1. docker/k8s/base/config.toml is config.toml (gen-configmap.sh --check)
#   2. each overlay renders (kubectl kustomize) and passes scripts/validate-k8s.py:
#      Kubernetes 1.32 schemas, CRD schemas, restricted Pod Security Standard
#   3. docker/compose.yml passes `docker compose config`
#   4. the Dockerfiles pass hadolint, the deployment shell scripts shellcheck
#   5. the alert rules pass promtool check/test rules and scripts/validate-alerts.py
# The tools come from scripts/validate-setup.sh (a venv, installed once).
#   scripts/validate-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v kubectl >/dev/null ||
  { echo "validate-deploy.sh: kubectl (1.27 or later, with kustomize) is needed" >&2; exit 1; }
VENV=$(scripts/validate-setup.sh)
SHELL_SCRIPTS=(docker/garage/init.sh docker/k8s/gen-configmap.sh scripts/validate-setup.sh scripts/validate-deploy.sh)
status=0
step() { echo "== $*" >&2; }
fail() { echo "FAILED: $*" >&2; status=1; }

step "k8s ConfigMap source"
docker/k8s/gen-configmap.sh --check || fail "gen-configmap.sh --check"

for overlay in docker/k8s/overlays/*/; do
  name=$(basename "$overlay")
  step "k8s overlay $name"
  rendered=$(kubectl kustomize "$overlay") || { fail "kubectl kustomize $overlay"; continue; }
  # prod expects Secret reportd-secrets to exist already (docker/k8s/secret.example.yaml).
  "$VENV/bin/python" scripts/validate-k8s.py --name "$name" --external-secret reportd-secrets - <<<"$rendered" ||
    fail "k8s overlay $name"
done
step "k8s example Secret"
"$VENV/bin/python" scripts/validate-k8s.py --name secret.example docker/k8s/secret.example.yaml ||
  fail "secret.example.yaml"

step "compose"
if "$VENV/libexec/docker-compose" -f docker/compose.yml config --quiet; then
  echo "docker/compose.yml: valid" >&2
else
  fail "docker compose config"
fi

step "Dockerfiles"
if "$VENV/bin/hadolint" docker/Dockerfile docker/garage/Dockerfile; then echo "hadolint: clean" >&2; else fail "hadolint"; fi

step "shell scripts"
if "$VENV/bin/shellcheck" "${SHELL_SCRIPTS[@]}"; then echo "shellcheck: clean" >&2; else fail "shellcheck"; fi

step "alert rules"
"$VENV/bin/promtool" check rules docker/prometheus/alerts.yml || fail "promtool check rules"
"$VENV/bin/promtool" test rules docker/prometheus/alerts.test.yml || fail "promtool test rules"
"$VENV/bin/python" scripts/validate-alerts.py docker/prometheus/alerts.yml || fail "validate-alerts.py"

if ((status == 0)); then echo "validate-deploy.sh: all checks passed" >&2; fi
exit $status
