#!/usr/bin/env bash
# Installs schemathesis, pinned with everything it needs
# (scripts/schemathesis-requirements.txt), into a virtualenv under target/ the
# first time, and prints the path of its `st` command. tests/api's
# openapi_schemathesis test runs it; CI may run it ahead to install up front.
#   REPORTD_SCHEMATHESIS_VENV  the virtualenv (default: target/schemathesis-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=scripts/schemathesis-requirements.txt
venv=${REPORTD_SCHEMATHESIS_VENV:-target/schemathesis-venv}
stamp="$venv/.requirements"

# Reinstalled when the pins change, not on every run.
if ! cmp -s "$requirements" "$stamp" || [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$requirements" >&2
    cp "$requirements" "$stamp"
fi
echo "$(cd "$venv" && pwd)/bin/st"
