#!/usr/bin/env bash
# Measures the okta-event-hook release binary: its size, and its peak RSS while serving 1,000
# local deliveries under `cargo lambda watch --release` against moto. Loopback only; stops what
# it starts. Usage: scripts/measure-hook.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
export PATH="$VENV/bin:$PATH"
requests=${1:-1000}

cargo build --quiet --release -p okta-event-hook
hook_bin="$(target_dir)/release/okta-event-hook"
size=$(stat -c %s "$hook_bin")
echo "release binary (host $(uname -m), stripped, thin LTO): $size bytes ($((size / 1024)) KiB)"

WATCH_PID=""
cleanup() {
  [ -n "$WATCH_PID" ] && kill -- "-$WATCH_PID" 2>/dev/null || true
  [ -n "$WATCH_PID" ] && wait "$WATCH_PID" 2>/dev/null || true
  moto_stop
}
trap cleanup EXIT
moto_start
eval "$("$VENV/bin/python" scripts/local_okta.py setup "$RUN_DIR")"
port=$(free_port)
setsid cargo lambda watch --release --ignore-changes -A 127.0.0.1 -P "$port" \
  --env-var "IDC_GUARD_HOOK_SECRET_ARN=$SECRET_ARN" --env-var "IDC_GUARD_EVENT_QUEUE_URL=$QUEUE_URL" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" --env-var "AWS_REGION=$AWS_REGION" \
  --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" --env-var "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  --env-var "RUST_LOG=warn" > "$RUN_DIR/measure-watch.log" 2>&1 < /dev/null &
WATCH_PID=$!
for _ in $(seq 1 600); do wait_http "http://127.0.0.1:$port/" 1 2>/dev/null && break; done
QUEUE_URL="$QUEUE_URL" "$VENV/bin/python" - "$port" "$SECRET_ARN" "$requests" <<'PY'
import json, os, sys, time, urllib.error, urllib.request, boto3
port, arn, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).get_secret_value(SecretId=arn)["SecretString"]
envelope = json.load(open("events/okta/delivery-three-events.json"))
url = f"http://127.0.0.1:{port}/lambda-url/okta-event-hook/"
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
queue_url = os.environ["QUEUE_URL"]
unavailable = 0
def post(i, timeout):
    global unavailable
    for j, e in enumerate(envelope["data"]["events"]):
        e["uuid"] = f"measure-{i}-{j}"
    req = urllib.request.Request(url, data=json.dumps(envelope).encode(), method="POST",
                                 headers={"Authorization": auth, "Content-Type": "application/json"})
    for attempt in range(2):  # Okta retries a 5xx once
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                assert r.status == 200
                return
        except urllib.error.HTTPError as e:
            assert e.code == 503, e.code
            unavailable += 1
    raise SystemExit(f"delivery {i} refused twice")
# The first request makes cargo lambda build and start the function: wait for it.
post("warmup", 900)
latencies = []
for i in range(n):
    if i % 100 == 0:
        # The stand-in's FIFO de-duplication scans every queued message: keep the queue short.
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(got)])
    t = time.perf_counter()
    post(i, 30)
    latencies.append(time.perf_counter() - t)
latencies.sort()
print(f"503 answers (retried, as Okta would): {unavailable}")
print(f"{n} deliveries of 3 events: p50 {latencies[n//2]*1000:.1f} ms, p99 {latencies[int(n*0.99)]*1000:.1f} ms "
      "(loopback HTTP + cargo lambda's runtime emulator + moto; not Lambda's)")
PY
pid=$(pgrep -f "$hook_bin" | head -1 || true)
if [ -n "$pid" ]; then
  echo "peak RSS of the function process: $(grep VmHWM /proc/"$pid"/status | awk '{print $2, $3}')"
else
  echo "function process not found"; exit 1
fi
