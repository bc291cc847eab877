#!/usr/bin/env bash
# Regenerates base/config.toml, the copy of the repository's config.toml that
# base/kustomization.yaml turns into ConfigMap reportd-config (configMapGenerator:
# kustomize reads files only inside the kustomization's directory). The one
# change: [http] host = "0.0.0.0", since a pod must listen on all interfaces.
# Run after editing config.toml; tests/deploy.rs fails while the two differ.
#   docker/k8s/gen-configmap.sh [--check]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../config.toml
out=$here/base/config.toml

generate() {
  awk '
    /^\[/ { section = $0 }
    section == "[http]" && /^host[ \t]*=/ { sub(/=.*/, "= \"0.0.0.0\""); done = 1 }
    { print }
    END { if (!done) { print "gen-configmap.sh: no [http] host in config.toml" > "/dev/stderr"; exit 1 } }
  ' "$src"
}

if [[ ${1:-} == --check ]]; then
  if ! diff -u "$out" <(generate); then
    echo "gen-configmap.sh: $out is stale; run $0" >&2
    exit 1
  fi
  exit 0
fi
generate >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
