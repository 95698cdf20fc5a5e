"""The one DynamoDB table every store module shares: its client, its name, and the item helpers they all use.

Each module of this package owns the items of one kind (see its docstring for their keys); they all live in the
application table, so a write that must change two kinds at once can still be one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_ser = TypeSerializer()
_de = TypeDeserializer()


def as_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values -> DynamoDB's attribute values (items, keys, expression values)."""
    return {k: _ser.serialize(v) for k, v in values.items()}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's attribute values -> plain values."""
    return {k: _de.deserialize(v) for k, v in item.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return as_attributes({"pk": pk, "sk": sk})


def cancel_codes(exc: ClientError) -> list[str]:
    """Why each item of a cancelled transaction failed, in the order the items were given."""
    reasons = cast(list[dict[str, Any]], exc.response.get("CancellationReasons", []))
    return [reason.get("Code", "None") for reason in reasons]


def cancelled(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "TransactionCanceledException"


def first_condition_failed(exc: ClientError) -> bool:
    """A cancelled transaction whose first item's condition failed: the write it guards was already done."""
    return cancelled(exc) and cancel_codes(exc)[:1] == ["ConditionalCheckFailed"]


@dataclass(frozen=True)
class Table:
    """The application table: a typed client and the table's name."""

    client: DynamoDBClient
    name: str

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item as plain values (a consistent read), or None."""
        item = self.client.get_item(TableName=self.name, Key=key(pk, sk), ConsistentRead=True).get("Item")
        return from_attributes(dict(item)) if item else None

    def transact(self, items: list[dict[str, Any]]) -> None:
        """TransactWriteItems; each entry is {"Put"|"Update"|"Delete"|"ConditionCheck": {...}} without TableName."""
        entries = [{kind: {"TableName": self.name, **body}} for entry in items for kind, body in entry.items()]
        self.client.transact_write_items(TransactItems=cast("list[TransactWriteItemTypeDef]", entries))
