"""Reservations and limits: credits held for a job between its Claid call and its record, bounded by the month's
budget, and budget alerts claimed once per period.

Items (pk / sk):
  RESERVATION#<job_id> / RESERVATION   credits held for a job (or an edit attempt) and the month they count in
  LEDGER#<YYYY-MM>     / TOTAL         gains credits_reserved and committed (= used + reserved), see ledger.py
  ALERT#<period>       / <kind>        marks an alert as sent, so each goes out once per period

A reservation and the month's `committed` counter change in one transaction (with the job's record, for a
backfill's `unless_recorded`): DynamoDB conditions cannot add, so the budget is enforced on `committed` with the
bound computed here, and a reservation that counted without its item (or the reverse) would leak credits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import ClientError

from backdrop.credits import as_decimal
from backdrop.store.items import Table, as_attributes, cancel_codes, cancelled, first_condition_failed, key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RESERVATION_TTL_SECONDS = 14 * 24 * 3600
ALERT_TTL_SECONDS = RESERVATION_TTL_SECONDS * 5
ALERT_THRESHOLDS = (80, 100)
_RESERVE_ATTEMPTS = 5


@dataclass(frozen=True)
class Reservation:
    outcome: Literal["reserved", "already_reserved", "over_budget", "already_recorded"]
    credits: Decimal  # held for the job now (already_reserved: what an earlier holder holds, at least what was asked)
    month: str  # the month they count against: an earlier holder's (a backfill before midnight) is kept
    committed: Decimal | None = None  # after the reservation, when known
    crossed: tuple[int, ...] = ()  # budget alert thresholds (percent) this reservation crossed


# What a reservation's transaction item failing its condition means, by its place (see `_transact`).
_REFUSED_BY: tuple[Literal["over_budget", "already_recorded"] | None, ...] = (None, "over_budget", "already_recorded")


def crossed(budget: Decimal, committed: Decimal, credits: Decimal) -> tuple[int, ...]:
    """The alert thresholds that adding `credits` to reach `committed` went past."""
    if not budget:
        return ()
    before = committed - credits
    return tuple(t for t in ALERT_THRESHOLDS if before < budget * t / 100 <= committed)


class Reservations(Protocol):
    """Credits held against the month's budget, and alerts claimed once."""

    @property
    def budget(self) -> Decimal: ...  # the monthly budget in credits; 0: none

    def reserve(self, job_id: str, month: str, credits: Decimal, *, unless_recorded: bool = False) -> Reservation:
        """Hold the job's worst-case credits, at most once per job, under the budget; a job holding fewer is topped
        up in its own month. `unless_recorded`: refuse when the job's outcome is recorded (a backfill)."""
        ...

    def release(self, job_id: str, month: str, credits: Decimal) -> bool:
        """Give back exactly `credits` held for the job. False when none were, or it holds another amount now."""
        ...

    def release_held(self, job_id: str) -> Decimal:
        """Give back whatever the job holds; the credits given back (0 when none)."""
        ...

    def holds(self, job_id: str) -> bool:
        """Credits are held for the job: its Claid call is under way and its outcome not recorded yet."""
        ...

    def claim_alert(self, period: str, kind: str) -> bool:
        """True for the first caller only: an alert such as "budget exhausted" goes out once per period."""
        ...


class DynamoReservations:
    def __init__(self, client: DynamoDBClient, table_name: str, *, monthly_budget: float | Decimal = 0) -> None:
        self._table = Table(client, table_name)
        self.budget = as_decimal(monthly_budget)

    def reserve(self, job_id: str, month: str, credits: Decimal, *, unless_recorded: bool = False) -> Reservation:
        """A backfill reserves before it queues a job, so that what is queued counts against the budget as surely
        as what is running; the processor then finds those credits held, in their month, and tops them up (under
        the budget) when the job now needs more."""
        if self.budget and credits > self.budget:
            return Reservation("over_budget", credits, month)
        for _ in range(_RESERVE_ATTEMPTS):
            held = self._held(job_id)
            if held is None:
                outcome = self._hold(job_id, month, credits, unless_recorded)
                if outcome is not None:
                    return outcome
                continue  # someone reserved meanwhile: look at what they hold
            held_credits, held_month = held
            if held_credits >= credits:
                return Reservation("already_reserved", held_credits, held_month)
            outcome = self._top_up(job_id, held_month, held_credits, credits)
            if outcome is not None:
                return outcome
        raise RuntimeError(f"the credit reservation of job {job_id} kept changing under the processor")

    def _held(self, job_id: str) -> tuple[Decimal, str] | None:
        item = self._table.get(f"RESERVATION#{job_id}", "RESERVATION")
        return (Decimal(str(item["credits"])), str(item["month"])) if item else None

    def _hold(self, job_id: str, month: str, credits: Decimal, unless_recorded: bool) -> Reservation | None:
        """A new reservation; None when one appeared meanwhile."""
        expires = int(datetime.now(UTC).timestamp()) + RESERVATION_TTL_SECONDS
        item = {"pk": f"RESERVATION#{job_id}", "sk": "RESERVATION", "credits": credits, "month": month}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "Item": as_attributes({**item, "expires_at": expires}),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": self._committed_update(month, credits)},
        ]
        if unless_recorded:  # the job's record (jobs.py) checked in the same transaction
            items.append(
                {
                    "ConditionCheck": {
                        "Key": key(f"JOB#{job_id}", "JOB"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        return self._transact(items, month, credits, added=credits)

    def _top_up(self, job_id: str, month: str, held: Decimal, credits: Decimal) -> Reservation | None:
        """Raise a job's reservation from `held` to `credits`, under the budget; None when it changed meanwhile."""
        more = credits - held
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "Key": key(f"RESERVATION#{job_id}", "RESERVATION"),
                    "UpdateExpression": "SET credits = :credits",
                    "ConditionExpression": "credits = :held",
                    "ExpressionAttributeValues": as_attributes({":credits": credits, ":held": held}),
                }
            },
            {"Update": self._committed_update(month, more)},
        ]
        return self._transact(items, month, credits, added=more)

    def _transact(
        self, items: list[dict[str, Any]], month: str, credits: Decimal, added: Decimal
    ) -> Reservation | None:
        """A hold's or a top-up's transaction: the reservation, the month's counters, then (a hold's) the job's
        record. The first item whose condition failed says why nothing was reserved: the reservation changed
        meanwhile (None), the budget, or the job is already recorded."""
        try:
            self._table.transact(items)
        except ClientError as exc:
            if not cancelled(exc):
                raise
            codes = cancel_codes(exc)
            for index, refused in enumerate(_REFUSED_BY):
                if codes[index : index + 1] == ["ConditionalCheckFailed"]:
                    return None if refused is None else Reservation(refused, credits, month)
            raise
        committed = self._committed(month)
        return Reservation("reserved", credits, month, committed, crossed(self.budget, committed, added))

    def _committed_update(self, month: str, credits: Decimal) -> dict[str, Any]:
        """ADD credits to the month's reserved and committed counters, bounded by the budget."""
        update: dict[str, Any] = {
            "Key": key(f"LEDGER#{month}", "TOTAL"),
            "UpdateExpression": "ADD credits_reserved :c, committed :c",
            "ExpressionAttributeValues": as_attributes({":c": credits}),
        }
        if self.budget:
            update["ConditionExpression"] = "attribute_not_exists(committed) OR committed <= :bound"
            update["ExpressionAttributeValues"].update(as_attributes({":bound": self.budget - credits}))
        return update

    def _committed(self, month: str) -> Decimal:
        item = self._table.get(f"LEDGER#{month}", "TOTAL")
        return Decimal(item.get("committed", 0)) if item else Decimal(0)

    def release_held(self, job_id: str) -> Decimal:
        held = self._held(job_id)
        if held is None:
            return Decimal(0)
        credits, month = held
        return credits if self.release(job_id, month, credits) else Decimal(0)

    def release(self, job_id: str, month: str, credits: Decimal) -> bool:
        try:
            self._table.transact(
                [
                    {
                        "Delete": {
                            "Key": key(f"RESERVATION#{job_id}", "RESERVATION"),
                            "ConditionExpression": "credits = :c",
                            "ExpressionAttributeValues": as_attributes({":c": credits}),
                        }
                    },
                    {
                        "Update": {
                            "Key": key(f"LEDGER#{month}", "TOTAL"),
                            "UpdateExpression": "ADD credits_reserved :m, committed :m",
                            "ExpressionAttributeValues": as_attributes({":m": -credits}),
                        }
                    },
                ]
            )
        except ClientError as exc:
            if first_condition_failed(exc):
                return False
            raise
        return True

    def holds(self, job_id: str) -> bool:
        return self._table.get(f"RESERVATION#{job_id}", "RESERVATION") is not None

    def claim_alert(self, period: str, kind: str) -> bool:
        expires = int(datetime.now(UTC).timestamp()) + ALERT_TTL_SECONDS
        try:
            self._table.client.put_item(
                TableName=self._table.name,
                Item=as_attributes({"pk": f"ALERT#{period}", "sk": kind, "expires_at": expires}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
