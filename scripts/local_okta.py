"""Plays Okta against locally running idc-guard functions, and sets up / reads the local AWS side.

Used by scripts/demo.sh. Talks only to 127.0.0.1 (moto server and `cargo lambda watch`).

  local_okta.py setup RUN_DIR   create the hook secret, the FIFO queue, an organization, IAM
                                Identity Center groups, the state table, the alert topic, and
                                an access policy for them (RUN_DIR/access-policy.toml)
  local_okta.py play BASE       verify the hook, deliver every fixture, hand the queue to
                                access-sync, show assignments and alerts, then run signin-anomaly
                                on a CloudTrail log file in S3 (BASE: cargo lambda watch)
"""
import glob
import json
import os
import sys
import urllib.error
import urllib.request

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
    print(f"SECRET_ARN={arn}")
    print(f"QUEUE_URL={queue['QueueUrl']}")

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


def play(base, secret_arn, queue_url, alert_inbox):
    url = f"{base}/lambda-url/okta-event-hook/"
    authorization = aws("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
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
    for start in range(0, len(received), 10):
        batch = received[start:start + 10]
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
    print("  (aws-team-payments-eu is not in IAM Identity Center until SCIM pushes the rename: "
          "that record and the ones after it in its batch come back later, in order)")

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


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"] and len(sys.argv) == 3:
        setup(sys.argv[2])
    elif sys.argv[1:2] == ["play"] and len(sys.argv) == 6:
        play(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
