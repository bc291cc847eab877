#!/usr/bin/env bash
# One-shot setup of the single-node Garage in docker/compose.yml (service
# garage-init): assign the layout, create the bucket, import the fixed access
# key that reportd's environment names, and allow it on the bucket. Safe to run
# again: every step checks first. The same steps as scripts/services.sh.
set -euo pipefail

: "${GARAGE_BUCKET:?}" "${GARAGE_KEY_ID:?}" "${GARAGE_KEY_SECRET:?}"
KEY_NAME=${GARAGE_KEY_NAME:-reportd}
g() { garage -c /etc/garage.toml "$@"; }

# retry SECONDS CMD...: until CMD succeeds (the node may still be starting).
retry() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || { echo "garage-init: gave up on: $*" >&2; return 1; }
    sleep 1
  done
}

retry 60 g status >/dev/null

if [[ $(g status) == *"NO ROLE ASSIGNED"* ]]; then
  node=$(g node id -q | cut -d@ -f1)
  version=$(g layout show | sed -n 's/^Current cluster layout version: //p')
  g layout assign -z dc1 -c 1G "$node"
  g layout apply --version $((version + 1))
  echo "garage-init: layout applied (version $((version + 1)))"
fi

# Right after the layout change the bucket table may not accept writes yet.
bucket_ready() { g bucket info "$GARAGE_BUCKET" >/dev/null 2>&1 || g bucket create "$GARAGE_BUCKET"; }
retry 60 bucket_ready

if ! g key info "$GARAGE_KEY_ID" >/dev/null 2>&1; then
  g key import --yes -n "$KEY_NAME" "$GARAGE_KEY_ID" "$GARAGE_KEY_SECRET"
fi
g bucket allow --read --write --owner "$GARAGE_BUCKET" --key "$GARAGE_KEY_ID"
echo "garage-init: bucket $GARAGE_BUCKET ready for key $GARAGE_KEY_ID"
