#!/usr/bin/env bash
# The main job end to end on local stand-ins: moto server for AWS, `cargo lambda watch` for
# Lambda, this script for Okta. Verifies the hook, delivers every fixture, shows the queue.
# Everything listens on 127.0.0.1 only and is stopped (by PID) when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv
export PATH="$VENV/bin:$PATH"   # cargo-lambda comes from the project's .venv

WATCH_PID=""
cleanup() {
  if [ -n "$WATCH_PID" ] && kill -0 "$WATCH_PID" 2>/dev/null; then
    log "stopping cargo lambda watch (pid $WATCH_PID and the function it runs)"
    kill -- "-$WATCH_PID" 2>/dev/null || kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
  fi
  moto_stop
}
trap cleanup EXIT

log "building the okta-event-hook function"
cargo build --quiet -p okta-event-hook

moto_start
eval "$("$VENV/bin/python" scripts/local_okta.py setup)"
log "hook secret: $SECRET_ARN"
log "event queue: $QUEUE_URL"

port=$(free_port)
log "starting cargo lambda watch on 127.0.0.1:$port"
# setsid: its own process group, so the function process it spawns is stopped with it.
setsid cargo lambda watch -A 127.0.0.1 -P "$port" \
  --env-var "IDC_GUARD_HOOK_SECRET_ARN=$SECRET_ARN" \
  --env-var "IDC_GUARD_EVENT_QUEUE_URL=$QUEUE_URL" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
  --env-var "AWS_REGION=$AWS_REGION" \
  --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
  --env-var "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  --env-var "RUST_LOG=info" \
  > "$RUN_DIR/watch.log" 2>&1 < /dev/null &
WATCH_PID=$!
url="http://127.0.0.1:$port/lambda-url/okta-event-hook/"
for _ in $(seq 1 240); do
  kill -0 "$WATCH_PID" 2>/dev/null || { cat "$RUN_DIR/watch.log" >&2; exit 1; }
  wait_http "http://127.0.0.1:$port/" 1 2>/dev/null && break
done
wait_http "http://127.0.0.1:$port/" 1 || { cat "$RUN_DIR/watch.log" >&2; exit 1; }

"$VENV/bin/python" scripts/local_okta.py play "$url" "$SECRET_ARN" "$QUEUE_URL"
log "done: the hook verified, authenticated, validated and queued every event once (log: .run/watch.log)"
