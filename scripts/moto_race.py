"""Races one DynamoDB conditional PutItem (the exactly-once claim's condition) from many
threads against a moto server, and counts the rounds where more than one writer won. DynamoDB
lets exactly one win; plain moto_server, under load, sometimes lets two (BENCHMARKS.md).

Usage: .venv/bin/python scripts/moto_race.py http://127.0.0.1:PORT [threads] [rounds]
"""

import os
import sys
import threading

import boto3

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

url = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 16
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 300
table = "moto-race"
db = boto3.client("dynamodb", endpoint_url=url)
db.create_table(
    TableName=table,
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
clients = [boto3.client("dynamodb", endpoint_url=url) for _ in range(threads)]
doubled = 0
for r in range(rounds):
    winners = []
    barrier = threading.Barrier(threads)

    def claim(client):
        barrier.wait()
        try:
            client.put_item(
                TableName=table,
                Item={"pk": {"S": f"claim-{r}"}, "data": {"S": "x" * 2000}},
                ConditionExpression="attribute_not_exists(pk) OR (attribute_exists(#ttl) AND #ttl <= :now)",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":now": {"N": "100"}},
            )
            winners.append(1)
        except client.exceptions.ConditionalCheckFailedException:
            pass

    workers = [threading.Thread(target=claim, args=(c,)) for c in clients]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if len(winners) != 1:
        doubled += 1
db.delete_table(TableName=table)
print(f"rounds with other than one winner: {doubled} of {rounds}")
