#!/usr/bin/env bash
# Checks the dependency tree against deny.toml (SECURITY.md, "Supply chain"):
# every license is one of the permissive set, no banned or wildcard
# dependency, every crate from crates.io. Installs cargo-deny if missing.
# Advisories are left out: their database lives on GitHub, which the build
# machines cannot reach. (cargo metadata reads crates.io for every platform's
# dependencies, so this is not run with --offline.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
    echo "installing cargo-deny" >&2
    cargo install cargo-deny --locked
fi
exec cargo deny --workspace check licenses bans sources
