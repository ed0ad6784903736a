"""Cold start of each function: process start to its first Runtime API poll.

A local stand-in of the Lambda Runtime API listens on 127.0.0.1; each function binary (a host
release build) is started with the environment Lambda gives it plus the function's own
configuration, and the time from `spawn` to its first `GET /2018-06-01/runtime/invocation/next`
is one cold start. The process is then stopped (by its PID). Beside each Rust function, a Python
function doing the same initialisation (boto3 clients for the same services, the policy file
parsed, the same secrets and settings read from the environment) is measured the same way.

  measure_cold_start.py TARGET_DIR POLICY_FILE [STARTS]

Prints one row per function: median and p90 over STARTS (default 25) starts, and the binary's
size. Nothing leaves 127.0.0.1: no function makes a network call before its first poll.
"""
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

FUNCTIONS = ["okta-event-hook", "access-sync", "scim-token-rotation", "signin-anomaly"]
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:idc-guard/{}-AbCdEf"

CONFIG = {
    "okta-event-hook": {
        "IDC_GUARD_HOOK_SECRET_ARN": ARN.format("event-hook"),
        "IDC_GUARD_EVENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/idc-guard-events.fifo",
    },
    "access-sync": {
        "IDC_GUARD_STATE_TABLE": "idc-guard-state",
        "IDC_GUARD_ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:idc-guard-alerts",
    },
    "scim-token-rotation": {
        "IDC_GUARD_SCIM_TOKEN_SECRET_ARN": ARN.format("scim-token"),
        "IDC_GUARD_HOOK_SECRET_ARN": ARN.format("event-hook"),
        "IDC_GUARD_STATE_TABLE": "idc-guard-state",
        "IDC_GUARD_ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:idc-guard-alerts",
        "IDC_GUARD_OKTA_ORG_URL": "https://acme.okta.com",
        "IDC_GUARD_OKTA_API_SECRET_ARN": ARN.format("okta-api"),
        "IDC_GUARD_OKTA_AWS_APP_ID": "0oa1awsidc",
        "IDC_GUARD_OKTA_EVENT_HOOK_ID": "whk1idcguard",
    },
    "signin-anomaly": {
        "IDC_GUARD_STATE_TABLE": "idc-guard-state",
        "IDC_GUARD_ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:idc-guard-alerts",
    },
}

# The same initialisation in Python: the clients each function creates, the policy parsed.
PYTHON = r'''
import json, os, sys, tomllib, urllib.request
import boto3
services = {
    "okta-event-hook": ["secretsmanager", "sqs"],
    "access-sync": ["sso-admin", "identitystore", "organizations", "dynamodb", "sns", "secretsmanager", "sqs"],
    "scim-token-rotation": ["secretsmanager", "dynamodb", "sns"],
    "signin-anomaly": ["cloudtrail", "s3", "dynamodb", "identitystore", "sns"],
}[sys.argv[1]]
session = boto3.session.Session()
clients = [session.client(s) for s in services]
if sys.argv[1] in ("access-sync", "signin-anomaly"):
    with open(os.environ["IDC_GUARD_POLICY_FILE"], "rb") as f:
        policy = tomllib.load(f)
urllib.request.urlopen("http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/next")
'''


class RuntimeApi:
    """Answers nothing: it only notes when the first poll arrives."""

    def __init__(self):
        self.polled = threading.Event()
        self.at = None
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.startswith("/2018-06-01/runtime/invocation/next") and not api.polled.is_set():
                    api.at = time.perf_counter()
                    api.polled.set()
                # Hold the poll open like Lambda does between invocations; the process is killed.
                time.sleep(5)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"


def start_once(argv, env):
    api = RuntimeApi()
    env = {**env, "AWS_LAMBDA_RUNTIME_API": api.address}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.polled.wait(30):
            err = proc.stderr.read1(4000).decode(errors="replace") if proc.poll() is not None else ""
            raise SystemExit(f"{argv[0]} never polled the Runtime API: {err}")
        return (api.at - t0) * 1000
    finally:
        proc.kill()
        proc.wait()
        api.server.shutdown()


def base_env(name, policy):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "cold-start-measurement",
        "AWS_SESSION_TOKEN": "cold-start-measurement",
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start", "AWS_EC2_METADATA_DISABLED": "true",
        "IDC_GUARD_POLICY_FILE": policy, "RUST_LOG": "warn",
    }
    env.update(CONFIG[name])
    return env


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    target, policy = sys.argv[1], os.path.abspath(sys.argv[2])
    starts = int(sys.argv[3]) if len(sys.argv) == 4 else 25
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PYTHON)
        python_function = f.name
    print(f"{'function':<22} {'Rust median':>12} {'p90':>8} {'Python median':>14} {'p90':>8} {'binary':>12}")
    for name in FUNCTIONS:
        binary = os.path.join(target, name)
        env = base_env(name, policy)
        start_once([binary], env)  # page cache warm, as on a reused Lambda host
        rust = sorted(start_once([binary], env) for _ in range(starts))
        start_once([sys.executable, python_function, name], env)
        py = sorted(start_once([sys.executable, python_function, name], env) for _ in range(starts))
        p90 = lambda xs: xs[int(len(xs) * 0.9) - 1]
        print(f"{name:<22} {statistics.median(rust):>9.1f} ms {p90(rust):>5.1f} ms "
              f"{statistics.median(py):>11.1f} ms {p90(py):>5.1f} ms {os.path.getsize(binary):>10,} B")
    os.unlink(python_function)


if __name__ == "__main__":
    main()
