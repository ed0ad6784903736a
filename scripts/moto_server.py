"""moto server, with DynamoDB's item writes made atomic as DynamoDB documents them.

DynamoDB applies a conditional write (PutItem, UpdateItem, DeleteItem with a
ConditionExpression, and TransactWriteItems) atomically: of two writers racing on one
item, one condition holds and the other fails. moto checks the condition and then writes
in two Python steps, without a lock, while its server answers requests on many threads, so
both racing writers can win. idc-guard's exactly-once claims, alert de-duplication and
last-use merges rest on that atomicity, and the tests race them on purpose.

This wrapper serialises the DynamoDB backend's item operations (reads included, so a read
never sees a write half done) and then runs moto's own server unchanged.
Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (the arguments of moto_server).
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "get_item",
    "query",
    "scan",
)
_LOCK = threading.RLock()


def _atomic(operation):
    @functools.wraps(operation)
    def locked(*args, **kwargs):
        with _LOCK:
            return operation(*args, **kwargs)

    return locked


for _name in _ITEM_OPERATIONS:
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
