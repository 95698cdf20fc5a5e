"""The credit ledger: what each month's Claid calls cost, kept as counters beside the records that add to them.

Items (pk / sk):
  LEDGER#<YYYY-MM> / TOTAL          credits_used, images, jobs_*; credits_reserved; committed = used + reserved;
                                    credits_at_risk (unanswered calls in temporary-bucket mode: maybe charged)
  LEDGER#<YYYY-MM> / PROFILE#<name> the same counters for one profile ("-" for none)
  LEDGER#<YYYY-MM> / DAY#<YYYY-MM-DD>#PROFILE#<name>  the same counters for the day the outcome was recorded
                                    (under the credits' month, so the days of a month add up to its total)
  EDIT#<edit_id>   / ATTEMPT#<attempt_id>  one Claid image edit call (a rendition), written exactly once; the same
                                    lines gain edit_credits_used, edits, edits_failed and edit_credits_at_risk: a line
                                    of their own beside the generations', while `committed` (the budget's figure)
                                    holds both

A counter is only ever added to in the same transaction as the record it counts (a job's outcome in jobs.py, an
edit attempt here), so a redelivered outcome, refused by its record's condition, is never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from backdrop.credits import as_decimal
from backdrop.store.items import Table, as_attributes, first_condition_failed, from_attributes, key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class EditCharge:
    """One edit attempt to record and settle: what Claid charged (`used`), what was held, what may have been."""

    edit_id: str
    attempt_id: str
    month: str
    profile: str | None
    succeeded: bool
    used: float | Decimal
    reserved: float | Decimal
    at_risk: float | Decimal
    fields: dict[str, Any]  # the attempt record's own attributes


class CreditLedger(Protocol):
    def month_usage(self, month: str) -> dict[str, Any]:
        """{"month", "total": counters, "profiles": {name: counters}, "days": {day: {profile: counters}}}."""
        ...

    def commit_edit(self, charge: EditCharge) -> bool:
        """Write one edit attempt's record and settle its credits, at most once per attempt (False: already)."""
        ...


def settlement(
    *, month: str, day: str, profile: str | None, line: str, values: dict[str, Any], settled: Decimal, reserved: Decimal
) -> list[dict[str, Any]]:
    """The ledger's part of recording one Claid call: `line` (an ADD of that call's counters) on the month's TOTAL,
    profile and day lines, and on TOTAL the reservation becomes what the call settled at (`settled`: used plus
    at risk, which stays committed against the budget since Claid may have charged it). Transaction items, for
    the caller's transaction with the record they count."""
    profile = profile or "-"
    total = {
        "Update": {
            "Key": key(f"LEDGER#{month}", "TOTAL"),
            "UpdateExpression": f"{line}, credits_reserved :unreserve, committed :settle",
            "ExpressionAttributeValues": as_attributes(
                {**values, ":unreserve": -reserved, ":settle": settled - reserved}
            ),
        }
    }
    return [total] + [
        {
            "Update": {
                "Key": key(f"LEDGER#{month}", sk),
                "UpdateExpression": line,
                "ExpressionAttributeValues": as_attributes(values),
            }
        }
        for sk in (f"PROFILE#{profile}", f"DAY#{day}#PROFILE#{profile}")
    ]


def reservation_spent(holder_id: str) -> dict[str, Any]:
    """The transaction item that removes a reservation settled by the same transaction (see reservations.py)."""
    return {"Delete": {"Key": key(f"RESERVATION#{holder_id}", "RESERVATION")}}


class DynamoLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._table = Table(client, table_name)

    def month_usage(self, month: str) -> dict[str, Any]:
        usage: dict[str, Any] = {"month": month, "total": {}, "profiles": {}, "days": {}}
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=as_attributes({":pk": f"LEDGER#{month}"}),
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page.get("Items", []):
                item = from_attributes(dict(raw))
                counters = {k: v for k, v in item.items() if k not in ("pk", "sk")}
                sk = str(item["sk"])
                if sk == "TOTAL":
                    usage["total"] = counters
                elif sk.startswith("PROFILE#"):
                    usage["profiles"][sk.removeprefix("PROFILE#")] = counters
                elif sk.startswith("DAY#"):
                    day, _, profile = sk.removeprefix("DAY#").partition("#PROFILE#")
                    usage["days"].setdefault(day, {})[profile] = counters
        return usage

    def commit_edit(self, charge: EditCharge) -> bool:
        """An edit is paid per attempt that Claid answered with an image (or may have), so the record is per
        attempt: a redelivered outcome of the same attempt is not counted again."""
        spent, held, risk = as_decimal(charge.used), as_decimal(charge.reserved), as_decimal(charge.at_risk)
        recorded = datetime.now(UTC)
        status_counter = "edits" if charge.succeeded else "edits_failed"
        item = {
            **charge.fields,
            "pk": f"EDIT#{charge.edit_id}",
            "sk": f"ATTEMPT#{charge.attempt_id}",
            "edit_id": charge.edit_id,
            "month": charge.month,
            "profile": charge.profile or "-",
            "credits": spent,
            "recorded_at": recorded.isoformat(timespec="milliseconds"),
        }
        items: list[dict[str, Any]] = [
            {"Put": {"Item": as_attributes(item), "ConditionExpression": "attribute_not_exists(pk)"}},
            *settlement(
                month=charge.month,
                day=recorded.strftime("%Y-%m-%d"),
                profile=charge.profile,
                line=f"ADD edit_credits_used :used, {status_counter} :one, edit_credits_at_risk :risk",
                values={":used": spent, ":one": 1, ":risk": risk},
                settled=spent + risk,
                reserved=held,
            ),
        ]
        if held:
            items.append(reservation_spent(charge.attempt_id))
        try:
            self._table.transact(items)
        except ClientError as exc:
            if first_condition_failed(exc):
                return False
            raise
        return True
