#!/usr/bin/env bash
# The deploy check: builds the deployment artifacts exactly as a user does (`sam build`, arm64,
# cargo-lambda from the project's .venv), then checks every function's artifact: each file its
# environment points to is in the artifact or one of its layers, the bootstrap is an aarch64
# executable, and the sizes (bootstrap, zipped artifact) are printed.
#
#   scripts/check-deploy.sh                    # with your policy/access-policy.toml
#   scripts/check-deploy.sh --example-policy   # with a copy of access-policy.example.toml
#
# The fast static form of the same check (template <-> what the build will ship) runs in
# scripts/test.sh: scripts/check_deploy.py --static.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv

if [ "${1:-}" = "--example-policy" ] && [ ! -f policy/access-policy.toml ]; then
  cp access-policy.example.toml policy/access-policy.toml
  trap 'rm -f policy/access-policy.toml' EXIT
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi

log "sam build (arm64, cargo-lambda)"
PATH="$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 \
  "$VENV/bin/sam" build --template template.yaml --build-dir .aws-sam/build

log "checking the artifacts"
"$VENV/bin/python" scripts/check_deploy.py --built .aws-sam/build
