"""Credits: the one place they are computed, reserved against the budget, and recorded in DynamoDB.

Items in the application table (pk / sk):
  JOB#<job_id>          / JOB        the terminal record of one job (written exactly once; later gains the
                                     selection made for it, see publishing.py); indexed by day (JobsByDay)
  SOURCE#<bucket>/<key> / LATEST     points at the job of the source object's newest version (S3's order, see
                                     versions.py), not the job recorded last
  RESERVATION#<job_id>  / RESERVATION credits held for a job between the processor and the recorder
  LEDGER#<YYYY-MM>      / TOTAL      credits_used, images, jobs_*; credits_reserved; committed = used + reserved;
                                     credits_at_risk (unanswered calls in temporary-bucket mode: maybe charged)
  LEDGER#<YYYY-MM>      / PROFILE#<name>  the same counters for one profile ("-" for none)
  LEDGER#<YYYY-MM>      / DAY#<YYYY-MM-DD>#PROFILE#<name>  the same counters for the day the job was recorded
                                     (under the credits' month, so the days of a month add up to its total)
  ALERT#<period>        / <kind>     marks an alert as sent, so each goes out once per period
DynamoDB conditions cannot add, so the budget is enforced on `committed` with the bound computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from backdrop.events import GenerationDetail, SourceObject
from backdrop.versions import is_newer

CREDITS_PER_IMAGE = Decimal(2)
AUTOPROMPT_CREDITS = Decimal("0.5")
RESERVATION_TTL_SECONDS = 14 * 24 * 3600
ALERT_THRESHOLDS = (80, 100)

_ser = TypeSerializer()
_de = TypeDeserializer()


def credits_for(images: int, autoprompt: bool) -> Decimal:
    """Claid's price: 2 credits per image returned, +0.5 per request whose prompt Claid wrote."""
    if images < 0:
        raise ValueError("images cannot be negative")
    return CREDITS_PER_IMAGE * images + (AUTOPROMPT_CREDITS if autoprompt else Decimal(0))


def _dec(value: float | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def as_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values -> DynamoDB's attribute values (items, keys, expression values)."""
    return {k: _ser.serialize(v) for k, v in values.items()}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's attribute values -> plain values."""
    return {k: _de.deserialize(v) for k, v in item.items()}


def _cancel_codes(exc: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]


_LATEST_ATTEMPTS = 8


def _order_fields(source: SourceObject) -> dict[str, str | None]:
    """What the LATEST item keeps of its version, to order the next one against."""
    return {"version_id": source.version_id, "sequencer": source.sequencer, "last_modified": source.last_modified}


def _source_of(latest: dict[str, Any]) -> SourceObject:
    """The version a LATEST item points at, as far as ordering goes (items written before versions were ordered
    keep none: versions.is_newer lets any job replace those)."""
    pk = str(latest["pk"]).removeprefix("SOURCE#")
    bucket, _, key = pk.partition("/")
    return SourceObject(
        bucket=bucket,
        key=key,
        version_id=latest.get("version_id"),
        sequencer=latest.get("sequencer"),
        last_modified=latest.get("last_modified"),
    )


def _first_condition_failed(exc: ClientError) -> bool:
    """A cancelled transaction whose first item's condition failed: the write it guards was already done."""
    return exc.response["Error"]["Code"] == "TransactionCanceledException" and _cancel_codes(exc)[:1] == [
        "ConditionalCheckFailed"
    ]


@dataclass(frozen=True)
class Reservation:
    outcome: Literal["reserved", "already_reserved", "over_budget"]
    credits: Decimal
    committed: Decimal | None = None  # after the reservation, when known
    crossed: tuple[int, ...] = ()  # budget alert thresholds (percent) this reservation crossed


class Ledger:
    def __init__(self, dynamodb: Any, table_name: str, *, monthly_budget: float | Decimal = 0) -> None:
        self._db = dynamodb
        self._table = table_name
        self.budget = _dec(monthly_budget)

    # --- processor side -------------------------------------------------------------------------------
    def reserve(self, job_id: str, month: str, credits: Decimal) -> Reservation:
        """Hold the job's worst-case credits. One transaction: a per-job reservation item (so a retried
        processor never holds twice) and the month's `committed` counter, bounded by the budget."""
        if self.budget and credits > self.budget:
            return Reservation("over_budget", credits)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": "TOTAL"}),
            "UpdateExpression": "ADD credits_reserved :c, committed :c",
            "ExpressionAttributeValues": as_attributes({":c": credits}),
        }
        if self.budget:
            update["ConditionExpression"] = "attribute_not_exists(committed) OR committed <= :bound"
            update["ExpressionAttributeValues"].update(as_attributes({":bound": self.budget - credits}))
        expires = int(datetime.now(UTC).timestamp()) + RESERVATION_TTL_SECONDS
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": as_attributes(
                                {
                                    "pk": f"RESERVATION#{job_id}",
                                    "sk": "RESERVATION",
                                    "credits": credits,
                                    "month": month,
                                    "expires_at": expires,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Update": update},
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = _cancel_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                return Reservation("already_reserved", credits)
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return Reservation("over_budget", credits)
            raise
        committed = self._committed(month)
        return Reservation("reserved", credits, committed, self._crossed(committed, credits))

    def release(self, job_id: str, month: str, credits: Decimal) -> bool:
        """Give back a reservation whose job will be retried later (transient trouble). False if none was held."""
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": as_attributes({"pk": f"RESERVATION#{job_id}", "sk": "RESERVATION"}),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": "TOTAL"}),
                            "UpdateExpression": "ADD credits_reserved :m, committed :m",
                            "ExpressionAttributeValues": as_attributes({":m": -credits}),
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _first_condition_failed(exc):
                return False
            raise
        return True

    def claim_alert(self, period: str, kind: str) -> bool:
        """True for the first caller only: an alert such as "budget exhausted" goes out once per period."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=as_attributes(
                    {
                        "pk": f"ALERT#{period}",
                        "sk": kind,
                        "expires_at": int(datetime.now(UTC).timestamp()) + RESERVATION_TTL_SECONDS * 5,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _committed(self, month: str) -> Decimal:
        item = self._db.get_item(
            TableName=self._table, Key=as_attributes({"pk": f"LEDGER#{month}", "sk": "TOTAL"}), ConsistentRead=True
        ).get("Item")
        return Decimal(from_attributes(item).get("committed", 0)) if item else Decimal(0)

    def _crossed(self, committed: Decimal, credits: Decimal) -> tuple[int, ...]:
        if not self.budget:
            return ()
        before = committed - credits
        return tuple(t for t in ALERT_THRESHOLDS if before < self.budget * t / 100 <= committed)

    # --- recorder side --------------------------------------------------------------------------------
    def record(self, detail: GenerationDetail) -> bool:
        """Write the job's terminal record and settle its credits, in one transaction.
        Returns False when this job was already recorded (a redelivered event): nothing is written then."""
        month = detail.credits.month
        used = _dec(detail.credits.used)
        reserved = _dec(detail.credits.reserved)
        recorded = datetime.now(UTC)
        now = recorded.isoformat(timespec="milliseconds")
        day = recorded.strftime("%Y-%m-%d")
        counters = {":used": used, ":images": detail.images, ":one": 1, ":risk": _dec(detail.credits.at_risk)}
        status_counter = f"jobs_{detail.status}"
        job_item = {
            "pk": f"JOB#{detail.job_id}",
            "sk": "JOB",
            "job_id": detail.job_id,
            "status": detail.status,
            "source_bucket": detail.source.bucket,
            "source_key": detail.source.key,
            "source_version": detail.source.version_id or detail.source.etag or "",
            "profile": detail.profile or "-",
            "month": month,
            "images": detail.images,
            "credits": used,
            "recorded_at": now,
            "recorded_day": day,  # the JobsByDay index: recent uploads for `backdrop review`
            "publish": str((detail.settings or {}).get("publish", "none")),
            "notified": False,
            "detail": detail.model_dump_json(),
        }
        if detail.problem is not None:
            job_item["reason"] = detail.problem.code
            job_item["reason_message"] = detail.problem.message
        if detail.claid is not None and detail.claid.request_id:
            job_item["claid_request_id"] = detail.claid.request_id
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": as_attributes(job_item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": "TOTAL"}),
                    "UpdateExpression": f"ADD credits_used :used, images :images, {status_counter} :one, "
                    "credits_at_risk :risk, credits_reserved :unreserve, committed :settle",
                    # Credits at risk stay committed against the budget: Claid may have charged them.
                    "ExpressionAttributeValues": as_attributes(
                        {**counters, ":unreserve": -reserved, ":settle": used + counters[":risk"] - reserved}
                    ),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": f"PROFILE#{detail.profile or '-'}"}),
                    "UpdateExpression": f"ADD credits_used :used, images :images, {status_counter} :one, "
                    "credits_at_risk :risk",
                    "ExpressionAttributeValues": as_attributes(counters),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": f"DAY#{day}#PROFILE#{detail.profile or '-'}"}),
                    "UpdateExpression": f"ADD credits_used :used, images :images, {status_counter} :one, "
                    "credits_at_risk :risk",
                    "ExpressionAttributeValues": as_attributes(counters),
                }
            },
        ]
        if reserved:
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": as_attributes({"pk": f"RESERVATION#{detail.job_id}", "sk": "RESERVATION"}),
                    }
                }
            )
        # The photo's newest version decides which job is its latest, whatever order the jobs are recorded in.
        # The pointer moves only forward, so a decision made against a stale read can only be "not newer" by
        # mistake when a newer one landed meanwhile, which is right anyway; moving it is conditional on the read.
        for _ in range(_LATEST_ATTEMPTS):
            current = self._item(f"SOURCE#{detail.source.bucket}/{detail.source.key}", "LATEST")
            moves = is_newer(detail.source, _source_of(current)) if current else True
            pointer = [self._latest_put(detail, now, current)] if moves else []
            try:
                self._db.transact_write_items(TransactItems=items[:1] + pointer + items[1:])
            except ClientError as exc:
                if _first_condition_failed(exc):
                    return False
                if pointer and _cancel_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                    continue  # another version's job moved the pointer since the read: decide again
                raise
            return True
        raise RuntimeError(f"the latest-job pointer of {detail.source.key} kept changing under the recorder")

    def _latest_put(self, detail: GenerationDetail, now: str, current: dict[str, Any] | None) -> dict[str, Any]:
        source = detail.source
        item = {
            "pk": f"SOURCE#{source.bucket}/{source.key}",
            "sk": "LATEST",
            "job_id": detail.job_id,
            "status": detail.status,
            "recorded_at": now,
            **{name: value for name, value in _order_fields(source).items() if value},
        }
        put: dict[str, Any] = {"TableName": self._table, "Item": as_attributes(item)}
        if current is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "job_id = :seen"
            put["ExpressionAttributeValues"] = as_attributes({":seen": current["job_id"]})
        return {"Put": put}

    def _item(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self._table, Key=as_attributes({"pk": pk, "sk": sk}), ConsistentRead=True
        ).get("Item")
        return from_attributes(item) if item else None

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self._item(f"JOB#{job_id}", "JOB")

    def latest_job_id(self, bucket: str, key: str) -> str | None:
        """The job last recorded for a source object, if any."""
        item = self._item(f"SOURCE#{bucket}/{key}", "LATEST")
        return str(item["job_id"]) if item else None

    def holds_reservation(self, job_id: str) -> bool:
        """Credits are held for the job: its Claid call is under way and its outcome not recorded yet."""
        return self._item(f"RESERVATION#{job_id}", "RESERVATION") is not None

    def mark_notified(self, job_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=as_attributes({"pk": f"JOB#{job_id}", "sk": "JOB"}),
            UpdateExpression="SET notified = :t",
            ExpressionAttributeValues=as_attributes({":t": True}),
        )

    def month_usage(self, month: str) -> dict[str, Any]:
        """The month's counters: TOTAL, one entry per profile, and one per day and profile."""
        usage: dict[str, Any] = {"month": month, "total": {}, "profiles": {}, "days": {}}
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": as_attributes({":pk": f"LEDGER#{month}"}),
            "ConsistentRead": True,
        }
        while True:
            answer = self._db.query(**query)
            for raw in answer.get("Items", []):
                item = from_attributes(raw)
                counters = {k: v for k, v in item.items() if k not in ("pk", "sk")}
                sk = str(item["sk"])
                if sk == "TOTAL":
                    usage["total"] = counters
                elif sk.startswith("PROFILE#"):
                    usage["profiles"][sk.removeprefix("PROFILE#")] = counters
                elif sk.startswith("DAY#"):
                    day, _, profile = sk.removeprefix("DAY#").partition("#PROFILE#")
                    usage["days"].setdefault(day, {})[profile] = counters
            if "LastEvaluatedKey" not in answer:
                return usage
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
