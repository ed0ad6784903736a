#!/usr/bin/env bash
# The main job end to end on local stand-ins: moto server for AWS, `cargo lambda watch` for
# Lambda, scripts/local_okta.py for Okta and IdC's SCIM endpoint. Verifies the hook, delivers
# every fixture, shows the queue, then runs access-sync: a full reconcile of the access policy,
# the queued Okta events, alerts; signin-anomaly on a CloudTrail log file in S3; the hook secret's
# rotation while Okta keeps delivering (zero refused), a SCIM token staged, probed, handed to Okta
# and promoted, the daily token check; a grant asked with the CLI (Okta device sign-in), refused
# to its requester, approved in Slack (scripts/local_slack.py) and ended by the grants function's
# schedule with its activity summary; the access ledger exported by access-sync and asked with
# `idc-guard access who|what|unused`, a review packet, and a review decision that removes an Okta
# membership with its evidence; then `idc-guard scan` / `diagnose` on fixtures.
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

log "building the functions and the CLI"
# As `cargo lambda watch` builds them: `cargo run --bin <function>` resolves dependency features
# for the whole workspace, so build the workspace the same way here; otherwise watch compiles its
# own variants on the first request, past the request's timeout.
cargo build --quiet --workspace
CLI="$(target_dir)/debug/idc-guard"
export IDC_GUARD_CLI="$CLI"

moto_start
OKTA_PORT=$(free_port)
SLACK_PORT=$(free_port)
export OKTA_PORT SLACK_PORT
# The account access manager (moto lacks it) is answered by the same local stand-in.
export AWS_ENDPOINT_URL_ACCOUNT_ACCESS="http://127.0.0.1:$OKTA_PORT"
eval "$("$VENV/bin/python" scripts/local_okta.py setup "$RUN_DIR")"
log "hook secret: $SECRET_ARN"
log "event queue: $QUEUE_URL"

port=$(free_port)
log "starting cargo lambda watch on 127.0.0.1:$port"
# setsid: its own process group, so the function process it spawns is stopped with it.
setsid cargo lambda watch -A 127.0.0.1 -P "$port" \
  --env-var "IDC_GUARD_HOOK_SECRET_ARN=$SECRET_ARN" \
  --env-var "IDC_GUARD_EVENT_QUEUE_URL=$QUEUE_URL" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
  --env-var "AWS_ENDPOINT_URL_ACCOUNT_ACCESS=$AWS_ENDPOINT_URL_ACCOUNT_ACCESS" \
  --env-var "AWS_REGION=$AWS_REGION" \
  --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
  --env-var "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  --env-var "IDC_GUARD_STATE_TABLE=$STATE_TABLE" \
  --env-var "IDC_GUARD_ALERT_TOPIC_ARN=$ALERT_TOPIC_ARN" \
  --env-var "IDC_GUARD_POLICY_FILE=$POLICY_FILE" \
  --env-var "IDC_GUARD_LEDGER_BUCKET=idc-guard-ledger" \
  --env-var "IDC_GUARD_SCIM_TOKEN_SECRET_ARN=$SCIM_SECRET_ARN" \
  --env-var "IDC_GUARD_OKTA_ORG_URL=http://127.0.0.1:$OKTA_PORT" \
  --env-var "IDC_GUARD_OKTA_API_SECRET_ARN=$OKTA_API_SECRET_ARN" \
  --env-var "IDC_GUARD_OKTA_AWS_APP_ID=0oa0demo1awsidc" \
  --env-var "IDC_GUARD_OKTA_EVENT_HOOK_ID=whk0demo1idcguard" \
  --env-var "IDC_GUARD_OKTA_CLIENT_ID=0oa0demo1idcguardcli" \
  --env-var "IDC_GUARD_SLACK_SECRET_ARN=$SLACK_SECRET_ARN" \
  --env-var "IDC_GUARD_SLACK_API_URL=http://127.0.0.1:$SLACK_PORT/api/" \
  --env-var "AWS_ENDPOINT_URL_CLOUDTRAIL=http://127.0.0.1:$OKTA_PORT" \
  --env-var "RUST_LOG=info" \
  > "$RUN_DIR/watch.log" 2>&1 < /dev/null &
WATCH_PID=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 240); do
  kill -0 "$WATCH_PID" 2>/dev/null || { cat "$RUN_DIR/watch.log" >&2; exit 1; }
  wait_http "http://127.0.0.1:$port/" 1 2>/dev/null && break
done
wait_http "http://127.0.0.1:$port/" 1 || { cat "$RUN_DIR/watch.log" >&2; exit 1; }

IDC_GUARD_STATE_TABLE="$STATE_TABLE" OKTA_API_SECRET_ARN="$OKTA_API_SECRET_ARN" SCIM_SECRET_ARN="$SCIM_SECRET_ARN" \
  SLACK_SECRET_ARN="$SLACK_SECRET_ARN" RUN_DIR="$RUN_DIR" POLICY_FILE="$POLICY_FILE" ALERT_TOPIC_ARN="$ALERT_TOPIC_ARN" "$VENV/bin/python" scripts/local_okta.py play "$base" "$SECRET_ARN" "$QUEUE_URL" "$ALERT_INBOX"

log "metrics the functions wrote in CloudWatch's embedded metric format (from their log)"
"$VENV/bin/python" - "$RUN_DIR/watch.log" <<'PY'
import collections, json, sys
totals = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    start = line.find("{")
    if start < 0 or '"_aws"' not in line:
        continue
    try:
        doc = json.loads(line[start:])
    except ValueError:
        continue
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        dims = [d for d in directive["Dimensions"][0] if d != "Function"]
        for m in directive["Metrics"]:
            label = m["Name"] + "".join(f" {d}={doc[d]}" for d in dims)
            totals[(doc.get("Function", "?"), label)] += doc[m["Name"]]
for (function, label), value in sorted(totals.items()):
    print(f"  {function:<22} {label:<52} {value:g}")
names = {label.split()[0] for _, label in totals}
missing = {"HookRequests", "EventsQueued", "ApiCalls", "AlertsSent", "AssignmentsCreated",
           "RotationSteps", "ScanRecords"} - names
if missing:
    sys.exit(f"no metric {sorted(missing)} in the function log")
PY

log "idc-guard plan against the same estate (exit 2 would mean drift)"
IDC_GUARD_STATE_TABLE="$STATE_TABLE" "$CLI" plan --policy "$POLICY_FILE"
log "idc-guard scan: the CloudTrail fixtures with the Okta deactivation (exit 2: findings)"
status=0
"$CLI" scan events/cloudtrail/*.json --okta events/okta/user-lifecycle-deactivate.json \
  --policy "$POLICY_FILE" || status=$?
[ "$status" -eq 2 ] || { echo "expected findings (exit 2), got $status" >&2; exit 1; }
log "idc-guard diagnose: where did alice's session fail?"
"$CLI" diagnose --user alice@acme.example --at 2026-11-20T18:31:00Z \
  events/cloudtrail/*.json --okta events/okta/user-authentication-sso-success.json --policy "$POLICY_FILE"
log "done: hook → queue → access-sync → assignments, alerts → sign-in checks → rotation (function log: .run/watch.log)"
