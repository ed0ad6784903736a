#!/usr/bin/env bash
# Shared helpers for idc-guard's scripts: the project's Python tools and the local AWS stand-in.
# Source it from the repository root. Every service is bound to 127.0.0.1 and stopped by its PID.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

# Where cargo puts its builds (CARGO_TARGET_DIR or the workspace's target/), asked of cargo.
target_dir() {
  cargo metadata --format-version 1 --no-deps --offline 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Makes a venv at DIR holding exactly the pinned requirements REQS (constraints CONS); installs
# again only when those files change.
pinned_venv() {
  local dir=$1 reqs=$2 cons=$3 label=$4 stamp want
  want=$(cat "$reqs" "$cons" | sha256sum | cut -d' ' -f1)
  stamp="$dir/.idc-guard-requirements"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "installing pinned Python tools into ${dir#"$ROOT"/} ($label)"
  python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" -c "$cons"
  echo "$want" > "$stamp"
}

# The project's Python tools: moto server, cfn-lint, SAM CLI, cargo-lambda, parliament.
ensure_venv() {
  pinned_venv "$VENV" "$ROOT/scripts/python-requirements.txt" \
    "$ROOT/scripts/python-constraints.txt" "moto, cfn-lint, aws-sam-cli, cargo-lambda, parliament"
}

# checkov pins a boto3 that conflicts with moto's, so it has a venv of its own inside .venv.
CHECKOV_VENV="$VENV/checkov"
ensure_checkov() {
  pinned_venv "$CHECKOV_VENV" "$ROOT/scripts/checkov-requirements.txt" \
    "$ROOT/scripts/checkov-constraints.txt" "checkov"
}

# Template checks that moto cannot make: cfn-lint, sam validate, IAM action/resource lint
# (parliament, after resolving intrinsics), what the deployment ships (static), checkov.
# Zero findings, or a finding kept in the template or the lint with its written reason.
template_checks() {
  log "template checks: cfn-lint, sam validate, IAM lint (parliament), checkov"
  "$VENV/bin/cfn-lint" template.yaml
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing SAM_CLI_TELEMETRY=0 \
    "$VENV/bin/sam" validate --region us-east-1 --template template.yaml
  "$VENV/bin/python" scripts/iam_lint.py --self-test
  "$VENV/bin/python" scripts/iam_lint.py template.yaml
  "$VENV/bin/python" scripts/check_deploy.py --static
  ensure_checkov
  "$CHECKOV_VENV/bin/checkov" -f template.yaml --framework cloudformation --compact --quiet \
    --skip-download 2>/dev/null || {
    "$CHECKOV_VENV/bin/checkov" -f template.yaml --framework cloudformation --compact --skip-download
    return 1
  }
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until URL answers any HTTP status, or fails after $2 seconds.
wait_http() {
  local url=$1 timeout=${2:-30}
  "$VENV/bin/python" - "$url" "$timeout" <<'PY'
import sys, time, urllib.request, urllib.error
url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"{url} did not answer in {sys.argv[2]} s")
PY
}

# Starts moto server on a free loopback port; exports the AWS SDK settings that point at it.
MOTO_PID=""
moto_start() {
  local port
  port=$(free_port)
  log "starting moto server on 127.0.0.1:$port"
  # moto's own server, with DynamoDB's conditional writes made atomic (scripts/moto_server.py)
  "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" > "$RUN_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  echo "$MOTO_PID" > "$RUN_DIR/moto.pid"
  if ! wait_http "http://127.0.0.1:$port/moto-api/" 60; then
    cat "$RUN_DIR/moto.log" >&2
    moto_stop
    return 1
  fi
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  unset AWS_PROFILE AWS_SESSION_TOKEN
  export AWS_EC2_METADATA_DISABLED=true
}

moto_stop() {
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    log "stopping moto server (pid $MOTO_PID)"
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  MOTO_PID=""
  rm -f "$RUN_DIR/moto.pid"
}
