#!/usr/bin/env bash
# Headless Chromium and chromedriver for the dashboard's browser test
# (tests/api/ui.rs), from Debian's packages. Idempotent: when both are on PATH
# it does nothing; otherwise it installs `chromium` and `chromium-driver`
# (as root, or through sudo). The test skips itself when they are missing and
# CI is unset; under CI it fails instead, so CI must run this first.
set -euo pipefail

have_browser() {
    command -v chromedriver >/dev/null 2>&1 &&
        { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
}

if have_browser; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ui-deps: no apt-get here: install Chromium and its chromedriver by hand" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium chromium-driver >/dev/null
have_browser || { echo "ui-deps: chromium or chromedriver still missing after apt-get" >&2; exit 1; }
echo "ui-deps: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version | head -1)"
