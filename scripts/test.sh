#!/usr/bin/env bash
# The test command: formatting, lints, every test against the local AWS stand-in, template checks.
# Installs what it needs (pinned Python tools in .venv), starts moto on 127.0.0.1, stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

template_checks

trap moto_stop EXIT
moto_start

log "tests (unit, integration against moto, benches compiled)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo test --workspace --doc --locked --quiet
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
