"""The local stack's TransactWriteItems (moto's, saving only the items it names): all or nothing, as DynamoDB's,
without copying the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from backdrop_kit import dynamodb_transactions
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

from tests.tables import create_app_table

TABLE = "ledger"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Installed for this test only: the class attribute goes back to moto's own afterwards.
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", DynamoDBBackend.transact_write_items)
    dynamodb_transactions.install()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        create_app_table(client, TABLE)
        yield client


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}}


def _items(client: Any) -> dict[str, dict[str, Any]]:
    return {i["pk"]["S"]: i for i in client.scan(TableName=TABLE, ConsistentRead=True)["Items"]}


def _add(pk: str, n: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": _key(pk),
            "UpdateExpression": "ADD n :n",
            "ExpressionAttributeValues": {":n": {"N": str(n)}},
        }
    }


def test_a_cancelled_transaction_leaves_every_item_as_it_was(ddb):
    ddb.put_item(TableName=TABLE, Item={**_key("month"), "n": {"N": "5"}})
    ddb.put_item(TableName=TABLE, Item={**_key("budget"), "n": {"N": "5"}})
    table = dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE]
    refused = {"Put": {"TableName": TABLE, "Item": {**_key("job"), "s": {"S": "done"}}}}
    check = {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": _key("budget"),
            "ConditionExpression": "n < :cap",
            "ExpressionAttributeValues": {":cap": {"N": "5"}},
        }
    }
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(TransactItems=[_add("month", 3), refused, check])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    # The update undone, the new item gone.
    assert {pk: item["n"]["N"] for pk, item in _items(ddb).items()} == {"month": "5", "budget": "5"}
    # The table is the same object: moto did not replace it by a copy taken before the transaction.
    assert dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE] is table


def test_a_transaction_that_passes_writes_every_item(ddb):
    ddb.put_item(TableName=TABLE, Item={**_key("month"), "n": {"N": "5"}})
    ddb.transact_write_items(
        TransactItems=[_add("month", 3), {"Put": {"TableName": TABLE, "Item": {**_key("job"), "n": {"N": "1"}}}}]
    )
    assert {pk: item["n"]["N"] for pk, item in _items(ddb).items()} == {"month": "8", "job": "1"}


def test_two_writes_to_one_item_are_refused_and_nothing_is_written(ddb):
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[_add("job", 1), _add("job", 2)])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _items(ddb) == {}
