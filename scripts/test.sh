#!/usr/bin/env bash
# The test command. It brings up every service the tests need (PostgreSQL,
# Redis, a Kafka-protocol broker and an S3 server, installing what is missing,
# and their TLS endpoints: see docs/services.md), points the suites at them and
# runs them all:
#   unit tests, tests/api (embedded), tests/render, tests/deploy,
#   tests/production (Kafka, PostgreSQL, Redis, S3),
#   then tests/faults alone, one test at a time: it kills workers and restarts
#   the broker, PostgreSQL and the S3 server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh up --tls
eval "$(scripts/services.sh env)"

status=0
cargo test --workspace --all-targets --no-fail-fast || status=$?
cargo test --features fault-injection --test faults -- --test-threads=1 || status=$?
exit $status
