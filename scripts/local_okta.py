"""Plays Okta against a locally running okta-event-hook, and sets up / reads the local AWS side.

Used by scripts/demo.sh. Talks only to 127.0.0.1 (moto server and `cargo lambda watch`).

  local_okta.py setup                      create the hook secret and the FIFO queue in moto
  local_okta.py play URL SECRET_ARN QUEUE  verify the hook, deliver every fixture, show the queue
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


def setup():
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


def play(url, secret_arn, queue_url):
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"]:
        setup()
    elif sys.argv[1:2] == ["play"] and len(sys.argv) == 5:
        play(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
