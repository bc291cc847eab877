#!/usr/bin/env bash
# The test command. It brings up every service the tests need (PostgreSQL,
# Redis, a Kafka-protocol broker and an S3 server, installing what is missing,
# and their TLS endpoints: see docs/services.md), points the suites at them and
# runs them all (the dashboard test drives headless Chromium: scripts/ui-deps.sh), in one build with the fault-injection and service-tests features:
#   unit tests, tests/api (embedded), tests/render, tests/deploy, tests/layers,
#   tests/production (Kafka, PostgreSQL, Redis, S3, and TLS to each), and
#   tests/faults, whose tests take turns (they kill workers and restart the
#   broker, PostgreSQL and the S3 server). Plain `cargo test` runs only what
#   needs no services.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deny.sh           # licenses, bans and sources of every dependency (deny.toml)
scripts/ui-deps.sh        # headless Chromium for the dashboard test (Debian packages)
scripts/services.sh up --tls
eval "$(scripts/services.sh env)"

exec cargo test --workspace --all-targets --no-fail-fast --features reportd/fault-injection,reportd/service-tests
