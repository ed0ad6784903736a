"""Plays Okta against locally running idc-guard functions, and sets up / reads the local AWS side.

Used by scripts/demo.sh. Talks only to 127.0.0.1 (moto server and `cargo lambda watch`).

  local_okta.py setup RUN_DIR   create the hook secret, the FIFO queue, an organization, IAM
                                Identity Center groups, the state table, the alert topic, and
                                an access policy for them (RUN_DIR/access-policy.toml)
  local_okta.py play BASE       verify the hook, deliver every fixture, hand the queue to
                                access-sync, show assignments and alerts, run signin-anomaly on a
                                CloudTrail log file in S3, then rotate the hook secret while Okta
                                keeps delivering and rotate the SCIM token (BASE: cargo lambda watch)

During `play` this process is Okta (its Management API and its event-hook sender) and IAM
Identity Center's SCIM endpoint, on 127.0.0.1:$OKTA_PORT. moto cannot invoke a rotation Lambda,
so `play` also plays Secrets Manager: it invokes the rotation function with each step's event,
in order, as the service does after RotateSecret.
"""
import glob
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def aws(service):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    return boto3.client(service, endpoint_url=endpoint, region_name=os.environ["AWS_REGION"])


def setup(run_dir):
    sm, sqs = aws("secretsmanager"), aws("sqs")
    # As in template.yaml: Secrets Manager generates the value; nothing is written down.
    value = sm.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    arn = sm.create_secret(Name="idc-guard/event-hook", SecretString=value,
                           Tags=[{"Key": "idc-guard:kind", "Value": "event-hook"}])["ARN"]
    dlq = sqs.create_queue(QueueName="idc-guard-events-dlq.fifo", Attributes={"FifoQueue": "true"})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])
    queue = sqs.create_queue(QueueName="idc-guard-events.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "false",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
                                     "maxReceiveCount": "5"})})
    enable_rotation(sm, arn, value)
    print(f"SECRET_ARN={arn}")
    print(f"QUEUE_URL={queue['QueueUrl']}")

    # Okta's API credential, and the SCIM token IdC issued (its endpoint: the stand-in on loopback).
    okta_port = os.environ["OKTA_PORT"]
    api = sm.create_secret(Name="idc-guard/okta-api",
                           SecretString=json.dumps({"type": "ssws", "token": secrets.token_urlsafe(30)}))["ARN"]
    issued = datetime.now(timezone.utc) - timedelta(days=80)
    scim_value = json.dumps({"token": secrets.token_urlsafe(48),
                             "scim_endpoint": f"http://127.0.0.1:{okta_port}/{SCIM_TENANT}/scim/v2",
                             "issued_at": issued.isoformat(), "expires_at": (issued + timedelta(days=365)).isoformat()})
    scim = sm.create_secret(Name="idc-guard/scim-token", SecretString=scim_value,
                            Tags=[{"Key": "idc-guard:kind", "Value": "scim-token"}])["ARN"]
    enable_rotation(sm, scim, scim_value)
    print(f"OKTA_API_SECRET_ARN={api}")
    print(f"SCIM_SECRET_ARN={scim}")
    # The Slack app of the grants function: its bot token and signing secret.
    slack = sm.create_secret(Name="idc-guard/slack", SecretString=json.dumps({
        "bot_token": "xoxb-" + secrets.token_hex(12), "signing_secret": secrets.token_hex(16)}))["ARN"]
    print(f"SLACK_SECRET_ARN={slack}")

    # The access side: an organization, accounts, IdC groups (as SCIM would have pushed them).
    org = aws("organizations")
    org.create_organization(FeatureSet="ALL")
    mgmt = org.describe_organization()["Organization"]["MasterAccountId"]
    root = org.list_roots()["Roots"][0]["Id"]
    ou = {n: org.create_organizational_unit(ParentId=root, Name=n)["OrganizationalUnit"]["Id"]
          for n in ["workloads", "platform", "sandbox"]}
    for name, parent, tags in [("payments-prod", "workloads", {"team": "payments"}),
                               ("payments-dev", "workloads", {"team": "payments"}),
                               ("data-prod", "workloads", {"team": "data"}),
                               ("platform-shared", "platform", {}),
                               ("sandbox-1", "sandbox", {"team": "payments"})]:
        acct = org.create_account(AccountName=name, Email=f"{name}@acme.example")["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=acct, SourceParentId=root, DestinationParentId=ou[parent])
        if tags:
            org.tag_resource(ResourceId=acct, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    instance = aws("sso-admin").list_instances()["Instances"][0]
    ids = aws("identitystore")
    for g in ["aws-core-readers", "aws-team-payments", "aws-team-data", "aws-admin-platform", "marketing-all"]:
        ids.create_group(IdentityStoreId=instance["IdentityStoreId"], DisplayName=g)
    ddb = aws("dynamodb")
    ddb.create_table(TableName="idc-guard-state", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    aws("s3").create_bucket(Bucket="idc-guard-ledger")
    sns = aws("sns")
    topic = sns.create_topic(Name="idc-guard-alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="idc-guard-alert-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"})
    with open(os.path.join(ROOT, "access-policy.example.toml")) as f:
        policy = f.read()
    policy = (policy.replace("ou-ab12-sandbox01", ou["sandbox"]).replace("ou-ab12-platform1", ou["platform"])
              .replace("111122223333", mgmt))
    path = os.path.join(run_dir, "access-policy.toml")
    with open(path, "w") as f:
        f.write(policy)
    print(f"STATE_TABLE=idc-guard-state")
    print(f"ALERT_TOPIC_ARN={topic}")
    print(f"ALERT_INBOX={inbox}")
    print(f"POLICY_FILE={path}")


SCIM_TENANT = "d-demo1234ab"
HOOK_ID = "whk0demo1idcguard"
APP_ID = "0oa0demo1awsidc"


def enable_rotation(sm, arn, value):
    """Turns rotation on. moto runs a lambda-less rotation when it is enabled (a new version with
    the same value): the current value is put back on top, as it was."""
    sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 90})
    sm.put_secret_value(SecretId=arn, SecretString=value, VersionStages=["AWSCURRENT"])


def request(url, method, headers, body=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def show(label, status, body):
    print(f"  {status}  {label:<58} {body[:70]}")


def invoke(base, function, event):
    status, body = request(f"{base}/2015-03-31/functions/{function}/invocations", "POST",
                           {"Content-Type": "application/json"}, json.dumps(event))
    assert status == 200, (function, status, body)
    return json.loads(body) if body else None


def assignments():
    sso, ids = aws("sso-admin"), aws("identitystore")
    inst = sso.list_instances()["Instances"][0]
    names = {}
    for arn in sso.list_permission_sets(InstanceArn=inst["InstanceArn"])["PermissionSets"]:
        names[arn] = sso.describe_permission_set(InstanceArn=inst["InstanceArn"], PermissionSetArn=arn)["PermissionSet"]["Name"]
    accounts = {a["Id"]: a["Name"] for a in aws("organizations").list_accounts()["Accounts"]}
    for g in ids.list_groups(IdentityStoreId=inst["IdentityStoreId"])["Groups"]:
        got = sso.list_account_assignments_for_principal(InstanceArn=inst["InstanceArn"], PrincipalId=g["GroupId"],
                                                         PrincipalType="GROUP")["AccountAssignments"]
        held = sorted(f"{names.get(a['PermissionSetArn'], '?')}@{accounts.get(a['AccountId'], a['AccountId'])}" for a in got)
        print(f"  {g['DisplayName']:<22} {', '.join(held) or '-'}")


def deliver_to_access_sync(base, messages):
    """Hands queue messages to access-sync in batches of 10 (as Lambda's SQS FIFO poller does);
    returns the ones it gave back for retry."""
    returned = []
    for start in range(0, len(messages), 10):
        batch = messages[start:start + 10]
        records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:idc-guard-events.fifo",
                    "awsRegion": "us-east-1"} for m in batch]
        result = invoke(base, "access-sync", {"Records": records})
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for m in batch:
            event = json.loads(m["Body"])
            state = "returned for retry" if m["MessageId"] in failed else "done"
            print(f"  {state:<19} {event.get('eventType')}")
        returned.extend(m for m in batch if m["MessageId"] in failed)
    return returned


def play(base, secret_arn, queue_url, alert_inbox):
    url = f"{base}/lambda-url/okta-event-hook/"
    authorization = aws("secretsmanager").get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]
    auth = {"Authorization": authorization}
    json_auth = {**auth, "Content-Type": "application/json"}

    print("Okta verifies the hook (one GET with a challenge):")
    status, body = request(url, "GET", {**auth, "X-Okta-Verification-Challenge": "demo-challenge-7f3a"})
    show("GET verification", status, body)
    assert status == 200 and json.loads(body) == {"verification": "demo-challenge-7f3a"}

    print("Okta delivers events (POST, Authorization header from the secret):")
    files = sorted(glob.glob(os.path.join(ROOT, "events", "okta", "*.json")))
    sent = set()
    for path in files:
        with open(path) as f:
            body = f.read()
        sent.update(e.get("uuid") for e in json.loads(body)["data"]["events"])
        status, text = request(url, "POST", json_auth, body)
        show(f"POST {os.path.basename(path)}", status, text or "(empty body)")
        assert status == 200, (path, status, text)

    print("Okta retries a delivery (at-least-once):")
    with open(os.path.join(ROOT, "events", "okta", "delivery-three-events.json")) as f:
        retry = f.read()
    status, text = request(url, "POST", json_auth, retry)
    show("POST delivery-three-events.json again", status, text or "(empty body)")

    print("Requests that must be refused:")
    for label, method, headers, body, want in [
        ("POST without Authorization", "POST", {"Content-Type": "application/json"}, retry, 401),
        ("POST with a wrong Authorization", "POST", {**json_auth, "Authorization": "Bearer guess"}, retry, 401),
        ("POST malformed JSON", "POST", json_auth, "{not json", 400),
        ("POST an envelope that is not an event hook", "POST", json_auth,
         '{"eventType":"com.okta.oauth2.tokens.transform","data":{"events":[{}]}}', 400),
        ("POST with no events", "POST", json_auth, '{"eventType":"com.okta.event_hook","data":{"events":[]}}', 400),
        ("POST over 1 MiB", "POST", json_auth, "x" * (1024 * 1024 + 1), 413),
        ("PUT", "PUT", json_auth, "{}", 405),
    ]:
        status, text = request(url, method, headers, body)
        show(label, status, text)
        assert status == want, (label, status, want)

    print("What reached the SQS FIFO queue:")
    sqs = aws("sqs")
    received = []
    empty = 0
    while empty < 2:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        messages = resp.get("Messages", [])
        if not messages:
            empty += 1
            continue
        for m in messages:
            received.append(m)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    for m in received:
        event = json.loads(m["Body"])
        print(f"  group={m['Attributes']['MessageGroupId']:<22} dedup={m['Attributes']['MessageDeduplicationId']:<38} "
              f"{event.get('published', '-'):<25} {event.get('eventType')}")
    print(f"{len(received)} messages for {len(sent)} distinct events in {len(files)} deliveries "
          f"(plus one retried delivery): each event queued exactly once.")
    assert len(received) == len(sent), (len(received), len(sent))

    print("\naccess-sync: scheduled full reconcile of the access policy:")
    with open(os.path.join(ROOT, "events", "eventbridge", "scheduled-reconcile.json")) as f:
        result = invoke(base, "access-sync", json.load(f))
    print(f"  {result}")
    assignments()

    print("\naccess-sync: the queued Okta events, as Lambda hands over SQS FIFO batches:")
    returned = deliver_to_access_sync(base, received)
    print("  (aws-team-payments-eu is not in IAM Identity Center until SCIM pushes the rename: "
          "that record and the ones after it in its batch come back later, in order)")
    print("SCIM pushes aws-team-payments-eu; the returned records come back, in order:")
    ids = aws("identitystore")
    store_id = aws("sso-admin").list_instances()["Instances"][0]["IdentityStoreId"]
    ids.create_group(IdentityStoreId=store_id, DisplayName="aws-team-payments-eu")
    again = deliver_to_access_sync(base, returned)
    assert not again, [json.loads(m["Body"]).get("eventType") for m in again]
    assignments()

    print("\nAlerts published to SNS (Alert schema):")
    sqs_client = aws("sqs")
    alerts = []
    while True:
        got = sqs_client.receive_message(QueueUrl=alert_inbox, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for m in got:
            alerts.append(json.loads(m["Body"]))
            sqs_client.delete_message(QueueUrl=alert_inbox, ReceiptHandle=m["ReceiptHandle"])
    for a in sorted(alerts, key=lambda a: a["time"]):
        print(f"  [{a['severity']:<8}] {a['detector']:<26} {a['title']}")
    assert alerts, "expected Okta-side alerts"

    state = aws("dynamodb").scan(TableName="idc-guard-state")["Items"]
    signins = [i for i in state if i["pk"]["S"].startswith("okta-signin#")]
    lifecycle = [i for i in state if i["pk"]["S"].startswith("okta-user#")]
    print(f"\nRecorded for the sign-in checks: {len(signins)} Okta sign-ins, {len(lifecycle)} lifecycle changes.")
    signin_checks(base, alert_inbox)
    rotation(base, secret_arn, queue_url, os.environ["SCIM_SECRET_ARN"], alert_inbox)


def fixture(*path):
    with open(os.path.join(ROOT, "events", *path)) as f:
        return json.load(f)


def drain_alerts(alert_inbox):
    sqs_client, alerts = aws("sqs"), []
    while True:
        got = sqs_client.receive_message(QueueUrl=alert_inbox, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return alerts
        for m in got:
            alerts.append(json.loads(m["Body"]))
            sqs_client.delete_message(QueueUrl=alert_inbox, ReceiptHandle=m["ReceiptHandle"])


def signin_checks(base, alert_inbox):
    """signin-anomaly on a CloudTrail log file in S3, correlated with what the hook recorded."""
    import gzip
    signin = fixture("cloudtrail", "idc-signin-2025-shape.json")      # alice signs in from Germany
    signin["sourceIPAddress"] = "5.44.46.10"
    portal = fixture("cloudtrail", "sso-get-role-credentials.json")
    portal.update({"eventID": "demo-portal-au", "eventTime": "2026-11-20T18:52:00Z", "sourceIPAddress": "1.0.0.1"})
    portal["userIdentity"] = signin["userIdentity"]                   # her portal session, from Australia
    bob = fixture("cloudtrail", "idc-signin-legacy-shape.json")        # bob, after Okta deactivated him
    root = fixture("cloudtrail", "console-login-root.json")
    body = gzip.compress(json.dumps({"Records": [signin, portal, bob, root, {"eventName": "garbled"}]}).encode())
    s3 = aws("s3")
    s3.create_bucket(Bucket="acme-org-cloudtrail")
    notification = fixture("s3", "cloudtrail-object-created.json")
    for r in notification["Records"]:
        s3.put_object(Bucket="acme-org-cloudtrail", Key=r["s3"]["object"]["key"], Body=body)

    print("\nsignin-anomaly: CloudTrail log objects arrive in S3 (one log file, one digest):")
    print(f"  {invoke(base, 'signin-anomaly', notification)}")
    alerts = drain_alerts(alert_inbox)
    for a in sorted(alerts, key=lambda a: a["time"]):
        print(f"  [{a['severity']:<8}] {a['detector']:<26} {a['title']}")
    found = {a["detector"] for a in alerts}
    for expected in ["impossible-travel", "token-replay", "deactivated-user-activity", "root-signin"]:
        assert expected in found, (expected, found)
    print("S3 delivers at least once: the same notification again:")
    print(f"  {invoke(base, 'signin-anomaly', notification)}")
    assert not drain_alerts(alert_inbox), "no alert twice"
    print("  no new alerts (alert ids are stable; each is sent once)")


class Okta:
    """Okta (Management API, event-hook sender) and IdC's SCIM endpoint, on 127.0.0.1."""

    def __init__(self, port, hook_url, api_token, hook_value, scim_tokens):
        self.hook_url, self.api_token = hook_url, api_token
        self.hook_value = hook_value          # the Authorization value Okta sends with deliveries
        self.scim_valid = set(scim_tokens)    # tokens IdC's SCIM endpoint accepts (at most two)
        self.app_token = None                 # the token Okta provisions with, once it is given one
        self.members = set()                  # (group id, user id) memberships changed by the API
        self.logins = OKTA_LOGINS             # user id → login
        self.device_codes = {}                # device sign-ins: code → polls so far
        self.signing_in = None                # who approves the next device sign-in in the browser
        self.trail = []                       # CloudTrail events LookupEvents answers with
        self.lock = threading.Lock()
        okta = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def form(self):
                n = int(self.headers.get("Content-Length") or 0)
                return {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}

            def route(self, method):
                path = self.path.split("?")[0]
                if path.startswith(f"/{SCIM_TENANT}/scim/v2/"):
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    return self.reply(200 if token in okta.scim_valid else 401, {})
                # AWS's account access manager, which moto lacks (its REST API, reached through
                # AWS_ENDPOINT_URL_ACCOUNT_ACCESS): no application, so no entitlement.
                if method == "POST" and path == "/applications-list":
                    return self.reply(200, {"applications": []})
                if method == "POST" and path == "/entitlements-list":
                    return self.reply(200, {"entitlements": []})
                # CloudTrail LookupEvents, which moto lacks (JSON 1.1, reached through
                # AWS_ENDPOINT_URL_CLOUDTRAIL): the demo's planted events of the user asked for.
                if method == "POST" and "LookupEvents" in self.headers.get("X-Amz-Target", ""):
                    return self.reply(200, okta.lookup_events(self.body()))
                # idc-guard's OIDC app: Okta's published keys and the device authorization grant.
                if method == "GET" and path == "/oauth2/v1/keys":
                    with open(os.path.join(ROOT, "events", "okta-api", "oauth2-v1-keys.json")) as f:
                        return self.reply(200, json.load(f))
                if method == "POST" and path == "/oauth2/v1/device/authorize":
                    return self.reply(200, okta.device_authorize(self.form()))
                if method == "POST" and path == "/oauth2/v1/token":
                    status, body = okta.device_token(self.form())
                    return self.reply(status, body)
                if self.headers.get("Authorization") != f"SSWS {okta.api_token}":
                    return self.reply(401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided"})
                hook = f"/api/v1/eventHooks/{HOOK_ID}"
                if method == "GET" and path == hook:
                    return self.reply(200, okta.hook_json())
                if method == "PUT" and path == hook:
                    value = self.body()["channel"]["config"]["authScheme"]["value"]
                    with okta.lock:
                        okta.hook_value = value
                    return self.reply(200, okta.hook_json())
                if method == "POST" and path == hook + "/lifecycle/verify":
                    challenge = secrets.token_hex(8)
                    status, text = request(okta.hook_url, "GET", {"Authorization": okta.hook_value,
                                                                  "X-Okta-Verification-Challenge": challenge})
                    ok = status == 200 and json.loads(text).get("verification") == challenge
                    return self.reply(200, {**okta.hook_json(), "verificationStatus": "VERIFIED" if ok else "UNVERIFIED"})
                if method == "POST" and path == f"/api/v1/apps/{APP_ID}/connections/default":
                    okta.app_token = self.body()["profile"]["token"]
                    return self.reply(200, {"authScheme": "TOKEN", "status": "ENABLED"})
                if method == "GET" and path == "/api/v1/logs":
                    return self.reply(200, [])
                if path.startswith("/api/v1/groups/") and "/users/" in path and method in ("PUT", "DELETE"):
                    group, user = path.removeprefix("/api/v1/groups/").split("/users/")
                    with okta.lock:
                        (okta.members.add if method == "PUT" else okta.members.discard)((group, user))
                    return self.reply(204)
                if method == "GET" and path.startswith("/api/v1/users/") and path.endswith("/groups"):
                    user = urllib.parse.unquote(path.removeprefix("/api/v1/users/").removesuffix("/groups"))
                    return self.reply(200, [{"id": g, "type": "OKTA_GROUP", "profile": {"name": n}}
                                            for g, n in okta.groups_of(user)])
                if method == "GET" and path == "/api/v1/users":
                    search = urllib.parse.parse_qs(self.path.partition("?")[2]).get("search", [""])[0]
                    email = search.removeprefix('profile.email eq "').removesuffix('"')
                    known = [u for u in okta.people if u == email]
                    return self.reply(200, [okta.user_json(u) for u in known])
                if method == "GET" and path.startswith("/api/v1/users/"):
                    who = urllib.parse.unquote(path.removeprefix("/api/v1/users/"))
                    return self.reply(200, okta.user_json(okta.logins.get(who, who)))
                if method == "GET" and path.startswith("/api/v1/groups/") and path.endswith("/users"):
                    group = path.removeprefix("/api/v1/groups/").removesuffix("/users")
                    with okta.lock:
                        ids = {u for g, u in okta.members if g == group}
                    return self.reply(200, [{"id": u, "status": "ACTIVE", "profile": {"login": okta.logins[u]}}
                                            for u in sorted(ids)])
                if method == "GET":
                    found = management_api(path, self.path.partition("?")[2])
                    if found is not None:
                        return self.reply(200, found)
                return self.reply(404, {"errorCode": "E0000007", "errorSummary": "Not found: Resource not found"})

            def do_GET(self):
                self.route("GET")

            def do_PUT(self):
                self.route("PUT")

            def do_POST(self):
                self.route("POST")

            def do_DELETE(self):
                self.route("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # The people of the grants demo and their Okta groups (besides memberships the API adds).
    people = {"alice@acme.example": ["platform-oncall"], "bob@acme.example": ["aws-approvers"]}

    def user_json(self, login):
        return {"id": okta_user_id(login), "status": "ACTIVE", "profile": {"login": login, "email": login}}

    def groups_of(self, user_id):
        login = self.logins.get(user_id, user_id)
        names = list(self.people.get(login, []))
        with self.lock:
            names += [GROUP_NAMES[g] for g, u in self.members if u == user_id and g in GROUP_NAMES]
        return [(okta_group_id(n), n) for n in names]

    def device_authorize(self, form):
        assert form.get("client_id") == OIDC_CLIENT_ID, form
        code = secrets.token_hex(8)
        with self.lock:
            self.device_codes[code] = 0
        org = f"http://127.0.0.1:{os.environ['OKTA_PORT']}"
        return {"device_code": code, "user_code": code[:8].upper(), "verification_uri": f"{org}/activate",
                "verification_uri_complete": f"{org}/activate?user_code={code[:8].upper()}",
                "expires_in": 600, "interval": 1}

    def device_token(self, form):
        """The first poll finds the person has not approved yet; then they have, as
        `self.signing_in` (the person at the browser)."""
        with self.lock:
            polls = self.device_codes.get(form.get("device_code"))
            if polls is None:
                return 400, {"error": "invalid_grant"}
            self.device_codes[form["device_code"]] = polls + 1
        if polls == 0:
            return 400, {"error": "authorization_pending", "error_description": "The device authorization is pending."}
        return 200, {"token_type": "Bearer", "expires_in": 3600, "scope": "openid profile email",
                     "access_token": secrets.token_hex(16), "id_token": id_token(self.signing_in)}

    def lookup_events(self, request):
        user = next(a["AttributeValue"] for a in request["LookupAttributes"])
        events = [{"EventId": e["eventID"], "EventName": e["eventName"], "Username": user,
                   "EventSource": e["eventSource"], "CloudTrailEvent": json.dumps(e)}
                  for e in self.trail if e["userIdentity"]["arn"].endswith("/" + user)]
        return {"Events": events}

    def hook_json(self):
        return {"id": HOOK_ID, "status": "ACTIVE", "verificationStatus": "VERIFIED", "name": "idc-guard",
                "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
                "channel": {"type": "HTTP", "version": "1.0.0",
                            "config": {"uri": self.hook_url, "headers": [],
                                       "authScheme": {"type": "HEADER", "key": "Authorization"}}}}


def okta_user_id(login):
    user_id = "00u" + uuid.uuid5(uuid.NAMESPACE_DNS, login).hex[:17]
    OKTA_LOGINS[user_id] = login
    return user_id


OKTA_LOGINS = {}
GROUP_NAMES = {}
OIDC_CLIENT_ID = "0oa0demo1idcguardcli"


def okta_group_id(name):
    group_id = "00g" + uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:17]
    GROUP_NAMES[group_id] = name
    return group_id


def id_token(login):
    """An Okta ID token for idc-guard's OIDC app, RS256-signed with the key whose public half is
    events/okta-api/oauth2-v1-keys.json (the test key in shared/src/testing/)."""
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    now = int(time.time())
    header = {"alg": "RS256", "kid": "idc-guard-test-key-1"}
    claims = {"sub": okta_user_id(login), "iss": f"http://127.0.0.1:{os.environ['OKTA_PORT']}",
              "aud": OIDC_CLIENT_ID, "iat": now, "exp": now + 3600, "ver": 1, "amr": ["pwd", "mfa"],
              "preferred_username": login}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    with open(os.path.join(ROOT, "shared", "src", "testing", "oidc-test-key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def management_api(path, query):
    """The read side of Okta's Management API that `idc-guard doctor` uses, from the fixtures in
    events/okta-api/ (Okta's shapes). The org is healthy but for one thing: the AWS app's
    catch-all rule allows access with one factor. Groups are found by name and, like the demo's
    IAM Identity Center groups, have no members yet."""
    def load(name):
        with open(os.path.join(ROOT, "events", name)) as f:
            return json.loads(f.read().replace("0oa1b2c3d4e5AWSidc", APP_ID))
    if path == "/api/v1/apps":
        return [load("okta-api/app-aws-iam-identity-center.json")]
    if path == f"/api/v1/apps/{APP_ID}":
        return load("okta-api/app-aws-iam-identity-center.json")
    if path == f"/api/v1/apps/{APP_ID}/credentials/keys":
        return load("okta-api/app-credentials-keys.json")
    if path == "/.well-known/okta-organization":
        return load("okta-api/well-known-okta-organization.json")
    if path == "/api/v1/policies/rst1aws0idcPolicy7d7/rules":
        rules = load("okta-api/access-policy-rules.json")
        rules[1]["actions"]["appSignOn"] = {"access": "ALLOW",
                                            "verificationMethod": {"factorMode": "1FA", "type": "ASSURANCE"}}
        return rules
    if path == "/api/v1/groups":
        name = urllib.parse.parse_qs(query).get("q", [""])[0]
        return [{"id": okta_group_id(name), "type": "OKTA_GROUP",
                 "profile": {"name": name, "description": ""}}]
    if path == f"/api/v1/apps/{APP_ID}/group-push/mappings":
        return load("okta-api/group-push-mappings.json")
    if path in (f"/api/v1/apps/{APP_ID}/groups", f"/api/v1/apps/{APP_ID}/users"):
        return []
    return None


def doctor(cli, base, alert_inbox):
    print("\nidc-guard doctor: the integration's health, as a person checks it now:")
    env = {**os.environ, "IDC_GUARD_OKTA_ORG_URL": f"http://127.0.0.1:{os.environ['OKTA_PORT']}",
           "IDC_GUARD_OKTA_API_SECRET_ARN": os.environ["OKTA_API_SECRET_ARN"],
           "IDC_GUARD_STATE_TABLE": os.environ["IDC_GUARD_STATE_TABLE"]}
    out = subprocess.run([cli, "doctor", "--policy", os.environ["POLICY_FILE"], "--catch-up"],
                         capture_output=True, text=True, env=env)
    print("  " + out.stdout.strip().replace("\n", "\n  "))
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "FAIL  mfa-posture" in out.stdout, out.stdout
    print("  (exit 2: a check does not pass; the catch-all rule is the one to fix)")
    print("\nintegration-health: the daily posture run (alerts once per state) and the System Log catch-up:")
    for check in ["posture", "posture", "catch-up"]:
        result = invoke(base, "integration-health", {"check": check})
        summary = ", ".join(f"{c['id']}={c['status']}" for c in result["checks"])
        print(f"  {check:<9} {summary}; alerts sent: {result['alerts_sent']}")
    alerts = drain_alerts(alert_inbox)
    for a in alerts:
        print(f"  [{a['severity']:<8}] {a['detector']:<26} {a['title']}")
    assert [a["detector"] for a in alerts] == ["mfa-not-required"], alerts


def lifecycle(cli, base, okta, alert_inbox):
    env = {**os.environ, "IDC_GUARD_OKTA_ORG_URL": f"http://127.0.0.1:{os.environ['OKTA_PORT']}",
           "IDC_GUARD_OKTA_API_SECRET_ARN": os.environ["OKTA_API_SECRET_ARN"],
           "IDC_GUARD_STATE_TABLE": os.environ["IDC_GUARD_STATE_TABLE"],
           "IDC_GUARD_ALERT_TOPIC_ARN": os.environ["ALERT_TOPIC_ARN"]}
    policy = ["--policy", os.environ["POLICY_FILE"]]

    def run(args, who_env=None, code=0):
        out = subprocess.run([cli, *args, *policy], capture_output=True, text=True, env=who_env or env)
        assert out.returncode == code, (args, out.returncode, out.stdout, out.stderr)
        return out.stdout.strip()

    print("\nAccess that ends: a deactivated user's live sessions (dry run: the local stand-in lacks")
    print("DescribePermissionSetProvisioningStatus; the tests run the write against a fake that has it):")
    ids = aws("identitystore")
    store = aws("sso-admin").list_instances()["Instances"][0]["IdentityStoreId"]
    carol = ids.create_user(IdentityStoreId=store, UserName="carol@acme.example", DisplayName="Carol",
                            Name={"GivenName": "Carol", "FamilyName": "Example"})["UserId"]
    for g in ids.list_groups(IdentityStoreId=store)["Groups"]:
        if g["DisplayName"] in ("aws-core-readers", "aws-admin-platform"):
            ids.create_group_membership(IdentityStoreId=store, GroupId=g["GroupId"], MemberId={"UserId": carol})
    print("  " + run(["revoke", "--user", "carol@acme.example", "--dry-run"]).replace("\n", "\n  "))

    grants_demo(cli, base, okta, alert_inbox)


def grants_demo(cli, base, okta, alert_inbox):
    """Time-boxed elevation through the grants function: the CLI signs in with Okta's device flow
    and asks; the request is posted to Slack (the stand-in); the requester's own approval is
    refused, by the CLI and in Slack; an approver's click approves it; the function's own
    five-minute schedule ends it a minute later, with what was done summarised from CloudTrail."""
    from local_slack import Slack
    sm = aws("secretsmanager")
    slack_secret = json.loads(sm.get_secret_value(SecretId=os.environ["SLACK_SECRET_ARN"])["SecretString"])
    slack = Slack(os.environ["SLACK_PORT"], slack_secret["bot_token"], slack_secret["signing_secret"],
                  {"U0ALICE01": "alice@acme.example", "U0BOB0001": "bob@acme.example"})
    grants_url = f"{base}/lambda-url/grants"

    def cli_as(person, args, code=0):
        env = {**os.environ, "IDC_GUARD_GRANTS_URL": grants_url,
               "IDC_GUARD_OKTA_ORG_URL": f"http://127.0.0.1:{os.environ['OKTA_PORT']}",
               "IDC_GUARD_OKTA_CLIENT_ID": OIDC_CLIENT_ID,
               "IDC_GUARD_TOKEN_FILE": os.path.join(os.environ["RUN_DIR"], f"{person}-okta-id-token.json")}
        for k in ("IDC_GUARD_OKTA_API_SECRET_ARN", "IDC_GUARD_STATE_TABLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(k, None)   # the CLI needs neither an Okta API token nor AWS access for grants
        okta.signing_in = f"{person}@acme.example"
        out = subprocess.run([cli, *args], capture_output=True, text=True, env=env)
        assert out.returncode == code, (args, out.returncode, out.stdout, out.stderr)
        return out

    print("\nTime-boxed elevation through the grants API (the CLI holds no Okta token and no AWS access):")
    out = cli_as("alice", ["login"])
    print("  alice: idc-guard login")
    print("    " + (out.stderr.strip() + "\n" + out.stdout.strip()).replace("\n", "\n    "))
    grant = json.loads(cli_as("alice", ["grant", "--group", "aws-admin-platform", "--for", "1m",
                                        "--reason", "INC-123", "--format", "json"]).stdout)
    print(f"  alice asks for aws-admin-platform for 1 minute: {grant['id']} {grant['status']}")
    message = slack.message_of(grant["id"])
    assert message and message["channel"] == "C0APPROVALS", slack.messages
    buttons = [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    print(f"  Slack #{message['channel']}: \"{message['text']}\" [{' | '.join(buttons)}]")
    out = cli_as("alice", ["approve", grant["id"], "--yes"], code=1)
    print(f"  alice approves her own request with the CLI: {out.stderr.strip()}")
    assert "self-approval" in out.stderr
    assert slack.click(f"{grants_url}/slack/interactions", "U0ALICE01", "grant-approve", grant["id"]) == 200
    print(f"  alice clicks Approve in Slack: {slack.answers[-1]}")
    assert "self-approval" in slack.answers[-1]
    stale = slack.click(f"{grants_url}/slack/interactions", "U0BOB0001", "grant-approve", grant["id"],
                        signed_at=time.time() - 600)
    print(f"  a click signed ten minutes ago (a replay): HTTP {stale}")
    assert stale == 401
    assert slack.click(f"{grants_url}/slack/interactions", "U0BOB0001", "grant-approve", grant["id"]) == 200
    print(f"  bob (aws-approvers) clicks Approve in Slack: {slack.answers[-1]}")
    alice = okta_user_id("alice@acme.example")
    assert any(u == alice for _, u in okta.members), "Okta membership added"
    print("  Okta: alice is now a member of aws-admin-platform (PUT /api/v1/groups/{group}/users/{user})")
    print(f"  Slack message now: \"{slack.message_of(grant['id'])['text']}\"")
    # What alice does with it, as CloudTrail records it (LookupEvents is answered by the stand-in).
    now = datetime.now(timezone.utc)
    role = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Administrator_4f1e2d3c4b5a6978/alice@acme.example"
    okta.trail = [{"eventVersion": "1.09", "eventID": str(uuid.uuid4()), "eventTime": (now + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "eventSource": src, "eventName": name, "readOnly": ro, "recipientAccountId": "111122223333",
                   "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.23",
                   "userIdentity": {"type": "AssumedRole", "arn": role, "accountId": "111122223333"}}
                  for s, src, name, ro in [(5, "ec2.amazonaws.com", "DescribeInstances", True),
                                            (9, "ec2.amazonaws.com", "DescribeInstances", True),
                                            (20, "ec2.amazonaws.com", "RebootInstances", False)]]
    time.sleep(61)
    result = invoke(base, "grants", fixture("eventbridge", "grants-schedule.json"))
    print(f"  a minute later, the grants function's own schedule: ended {result['ended']}")
    assert result["ended"] == [grant["id"]], result
    assert not any(u == alice for _, u in okta.members), "Okta membership removed"
    print("  Okta: the membership is gone (DELETE)")
    final = slack.message_of(grant["id"])["text"]
    print(f"  Slack message now: \"{final}\"")
    assert "ended" in final and "3 calls, 1 writes" in final, final
    cli_as("bob", ["login"])
    print("  bob: idc-guard grants")
    print("    " + cli_as("bob", ["grants"]).stdout.strip().replace("\n", "\n    "))
    detectors = [a["detector"] for a in drain_alerts(alert_inbox)]
    for d in ["grant-requested", "grant-approved", "grant-expired"]:
        assert d in detectors, detectors
    print(f"  audit trail on SNS: {', '.join(d for d in detectors if d.startswith('grant'))}")
    slack.server.shutdown()
    ledger_demo(cli, base, okta, cli_as)


def ledger_demo(cli, base, okta, cli_as):
    """The access ledger: SCIM has pushed three people; one group holds an assignment made by
    hand; alice used her team access yesterday (CloudTrail, read by signin-anomaly). access-sync's
    daily job exports the ledger to S3; the CLI asks who can reach payments-prod, what alice can
    reach and what went unused; the review packet goes to the owners, and bob (aws-approvers)
    removes carol from aws-admin-platform in Okta, with the evidence kept."""
    import gzip
    env = {**os.environ, "IDC_GUARD_STATE_TABLE": os.environ["IDC_GUARD_STATE_TABLE"]}
    policy = ["--policy", os.environ["POLICY_FILE"]]

    def run(args, code=0):
        out = subprocess.run([cli, *args, *policy], capture_output=True, text=True, env=env)
        assert out.returncode == code, (args, out.returncode, out.stdout, out.stderr)
        return out.stdout.strip()

    print("\nThe access ledger (who can reach what, why, and do they use it):")
    sso, ids = aws("sso-admin"), aws("identitystore")
    inst = sso.list_instances()["Instances"][0]
    store = inst["IdentityStoreId"]
    groups = {g["DisplayName"]: g["GroupId"] for g in ids.list_groups(IdentityStoreId=store)["Groups"]}
    people = {}
    for login, member_of in [("alice@acme.example", ["aws-team-payments", "aws-core-readers"]),
                             ("bob@acme.example", ["aws-core-readers", "marketing-all"])]:
        people[login] = ids.create_user(IdentityStoreId=store, UserName=login, DisplayName=login,
                                        Name={"GivenName": login.split("@")[0], "FamilyName": "Example"})["UserId"]
        for g in member_of:
            ids.create_group_membership(IdentityStoreId=store, GroupId=groups[g], MemberId={"UserId": people[login]})
    accounts = {a["Name"]: a["Id"] for a in aws("organizations").list_accounts()["Accounts"]}
    names = {sso.describe_permission_set(InstanceArn=inst["InstanceArn"], PermissionSetArn=a)["PermissionSet"]["Name"]: a
             for a in sso.list_permission_sets(InstanceArn=inst["InstanceArn"])["PermissionSets"]}
    sso.create_account_assignment(InstanceArn=inst["InstanceArn"], TargetId=accounts["data-prod"],
                                  TargetType="AWS_ACCOUNT", PermissionSetArn=names["TeamDeveloper"],
                                  PrincipalType="GROUP", PrincipalId=groups["marketing-all"])
    print("  SCIM pushed alice and bob; marketing-all was given TeamDeveloper in data-prod by hand")
    # Yesterday alice took her TeamDeveloper credentials for payments-prod from the portal.
    used = fixture("cloudtrail", "sso-get-role-credentials.json")
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    used.update({"eventID": str(uuid.uuid4()), "eventTime": yesterday, "sourceIPAddress": "5.44.46.10"})
    used["userIdentity"]["onBehalfOf"] = {"userId": people["alice@acme.example"],
                                          "identityStoreArn": f"arn:aws:identitystore::123456789012:identitystore/{store}"}
    used["serviceEventDetails"] = {"account_id": accounts["payments-prod"], "role_name": "TeamDeveloper"}
    used["requestParameters"] = {"accountId": accounts["payments-prod"], "roleName": "TeamDeveloper"}
    notification = fixture("s3", "cloudtrail-object-created.json")
    key = notification["Records"][0]["s3"]["object"]["key"].replace(".json.gz", "-ledger.json.gz")
    notification["Records"] = notification["Records"][:1]
    notification["Records"][0]["s3"]["object"]["key"] = key
    aws("s3").put_object(Bucket="acme-org-cloudtrail", Key=key,
                         Body=gzip.compress(json.dumps({"Records": [used]}).encode()))
    print(f"  signin-anomaly reads alice's portal use of yesterday: {invoke(base, 'signin-anomaly', notification)}")
    recorded = [i for i in aws("dynamodb").scan(TableName="idc-guard-state")["Items"] if i["pk"]["S"] == "last-used"]
    for i in recorded:
        print(f"    last use recorded: {i['sk']['S']} {i['data']}")
    result = invoke(base, "access-sync", fixture("eventbridge", "scheduled-ledger.json"))
    print(f"  access-sync's daily ledger job: {result['ledger_rows']} rows, {result['api_calls']} API calls")
    for key in result["objects"]:
        print(f"    s3://idc-guard-ledger/{key}")
    assert result["ledger_rows"] > 0, result
    bucket = ["--bucket", "idc-guard-ledger"]
    print(f"  idc-guard access who --account {accounts['payments-prod']} (payments-prod):")
    out = run(["access", "who", "--account", accounts["payments-prod"], *bucket])
    print("    " + out.replace("\n", "\n    "))
    assert "alice@acme.example" in out and "carol@acme.example" in out, out
    print("  idc-guard access what --user alice@acme.example --format csv:")
    out = run(["access", "what", "--user", "alice@acme.example", "--format", "csv", *bucket])
    print("    " + out.replace("\n", "\n    "))
    row = next(l for l in out.splitlines() if "TeamDeveloper" in l and accounts["payments-prod"] in l)
    assert yesterday[:10] in row, row
    print("  idc-guard access unused --days 90 (exit 2: there is some):")
    out = run(["access", "unused", "--days", "90", *bucket], code=2)
    print(f"    {len(out.splitlines()) - 2} rows unused, e.g.:")
    print("    " + "\n    ".join(out.splitlines()[:4]))
    assert "hand-made" in out, out
    assert not [l for l in out.splitlines() if l.startswith("alice@acme.example") and "TeamDeveloper" in l
                and accounts["payments-prod"] in l], "used yesterday: not unused"

    print("  idc-guard review --packets (per owner, what needs a decision):")
    out = run(["review", "--packets"], code=2)
    print("    " + out.replace("\n", "\n    "))
    assert "for aws-approvers:" in out and "carol@acme.example in aws-admin-platform" in out, out
    # Okta's side of carol's membership (SCIM pushed it to IAM Identity Center).
    with okta.lock:
        okta.members.add((okta_group_id("aws-admin-platform"), okta_user_id("carol@acme.example")))
    out = cli_as("carol", ["review", "decide", "keep", "--user", "carol@acme.example", "--group",
                           "aws-admin-platform", "--reason", "I need it"], code=1)
    print(f"  carol decides about her own access: {out.stderr.strip().splitlines()[-1]}")
    out = cli_as("bob", ["review", "decide", "remove", "--user", "carol@acme.example", "--group",
                         "aws-admin-platform", "--reason", "admin tier, never used"])
    print(f"  bob (aws-approvers): {out.stdout.strip()}")
    with okta.lock:
        assert (okta_group_id("aws-admin-platform"), okta_user_id("carol@acme.example")) not in okta.members
    print("  Okta: carol is no longer in aws-admin-platform (DELETE); SCIM carries it to IAM Identity Center")
    out = run(["review", "--history"])
    print("  idc-guard review --history:")
    print("    " + out.replace("\n", "\n    "))
    assert "bob@acme.example" in out and "membership removed" in out, out


class Deliveries:
    """Okta delivering events (one fresh sign-in event per delivery) until stopped."""

    def __init__(self, okta, queue_url):
        with open(os.path.join(ROOT, "events", "okta", "user-authentication-sso-success.json")) as f:
            self.template = json.load(f)
        self.okta, self.queue_url = okta, queue_url
        self.statuses, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            delivery = json.loads(json.dumps(self.template))
            delivery["eventId"] = str(uuid.uuid4())
            for e in delivery["data"]["events"]:
                e["uuid"] = str(uuid.uuid4())
            with self.okta.lock:
                value = self.okta.hook_value
            status, _ = request(self.okta.hook_url, "POST",
                                {"Authorization": value, "Content-Type": "application/json"}, json.dumps(delivery))
            self.statuses.append(status)
            time.sleep(0.1)

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.statuses


def rotation(base, hook_arn, queue_url, scim_arn, alert_inbox):
    sm = aws("secretsmanager")
    api_token = json.loads(sm.get_secret_value(SecretId=os.environ["OKTA_API_SECRET_ARN"])["SecretString"])["token"]
    scim_current = json.loads(sm.get_secret_value(SecretId=scim_arn, VersionStage="AWSCURRENT")["SecretString"])["token"]
    okta = Okta(os.environ["OKTA_PORT"], f"{base}/lambda-url/okta-event-hook/", api_token,
                sm.get_secret_value(SecretId=hook_arn, VersionStage="AWSCURRENT")["SecretString"], [scim_current])
    mask = lambda v: f"…{v[-4:]}"

    print("\nscim-token-rotation: the event-hook secret rotates while Okta keeps delivering:")
    deliveries = Deliveries(okta, queue_url)
    time.sleep(1)
    # Secrets Manager's RotateSecret creates the AWSPENDING version before createSecret; moto
    # cannot create a version without a value, so the value createSecret would generate is made
    # here the same way (GetRandomPassword, PutSecretValue AWSPENDING) and createSecret finds it.
    token = str(uuid.uuid4())
    value = sm.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    sm.put_secret_value(SecretId=hook_arn, ClientRequestToken=token, SecretString=value, VersionStages=["AWSPENDING"])
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"]:
        result = invoke(base, "scim-token-rotation", {"Step": step, "SecretId": hook_arn, "ClientRequestToken": token})
        held = "pending" if okta.hook_value == value else "current"
        print(f"  {step:<13} {result['outcome']:<12} Okta now sends the {held} value ({mask(okta.hook_value)})")
        time.sleep(1)
    time.sleep(1)
    statuses = deliveries.finish()
    refused = [s for s in statuses if s != 200]
    print(f"  {len(statuses)} deliveries while rotating: {statuses.count(200)} accepted, {len(refused)} refused")
    assert statuses and not refused, statuses
    stages = sm.describe_secret(SecretId=hook_arn)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[token], stages
    assert okta.hook_value == sm.get_secret_value(SecretId=hook_arn, VersionStage="AWSCURRENT")["SecretString"]
    print("  Okta holds the new AWSCURRENT value; the previous one is AWSPREVIOUS")

    print("\nscim-token-rotation: a new SCIM token is staged, probed, handed to Okta and promoted:")
    new_token = secrets.token_urlsafe(48)
    okta.scim_valid.add(new_token)   # a person generates a second token in the IdC console
    cli = os.environ.get("IDC_GUARD_CLI") or os.path.join(ROOT, "target", "debug", "idc-guard")
    out = subprocess.run([cli, "scim-token", "stage", "--secret", scim_arn, "--no-rotate"], input=new_token + "\n",
                         capture_output=True, text=True, check=True)
    assert new_token not in out.stdout + out.stderr
    version = out.stdout.split("(version ")[1].split(")")[0]
    print(f"  idc-guard scim-token stage (token on stdin): staged as version {version}")
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"]:
        result = invoke(base, "scim-token-rotation", {"Step": step, "SecretId": scim_arn, "ClientRequestToken": version})
        print(f"  {step:<13} {result['outcome']}")
    assert okta.app_token == new_token, "Okta provisions with the new token"
    status, _ = request(f"http://127.0.0.1:{os.environ['OKTA_PORT']}/{SCIM_TENANT}/scim/v2/ServiceProviderConfig",
                        "GET", {"Authorization": f"Bearer {okta.app_token}"})
    print(f"  Okta's provisioning call with the token it now holds: {status}")
    assert status == 200
    okta.scim_valid.discard(scim_current)   # the person deletes the old token, as the alert asks
    print("\nscim-token-rotation: the daily token check runs once:")
    print(f"  {invoke(base, 'scim-token-rotation', fixture('eventbridge', 'scheduled-scim-health.json'))}")
    status = subprocess.run([cli, "scim-token", "status", "--secret", scim_arn], capture_output=True, text=True,
                            check=True).stdout
    print("  " + status.strip().replace("\n", "\n  "))
    assert new_token not in status
    for a in drain_alerts(alert_inbox):
        print(f"  [{a['severity']:<8}] {a['detector']:<26} {a['title']}")
    doctor(cli, base, alert_inbox)
    lifecycle(cli, base, okta, alert_inbox)
    okta.server.shutdown()


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"] and len(sys.argv) == 3:
        setup(sys.argv[2])
    elif sys.argv[1:2] == ["play"] and len(sys.argv) == 6:
        play(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
