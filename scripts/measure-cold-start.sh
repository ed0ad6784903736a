#!/usr/bin/env bash
# Cold start of each function (process start → first Runtime API poll), median of 25 starts,
# beside a Python function doing the same initialisation. Host release builds; a local stand-in
# of the Lambda Runtime API on 127.0.0.1; every process started is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv
log "release build of the four functions (host)"
cargo build --release --locked -p okta-event-hook -p access-sync -p scim-token-rotation -p signin-anomaly
log "cold starts (25 each, after one warm-up start)"
"$VENV/bin/python" scripts/measure_cold_start.py "$(target_dir)/release" access-policy.example.toml "${1:-25}"
