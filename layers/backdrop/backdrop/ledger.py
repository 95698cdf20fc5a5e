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
  EDIT#<edit_id>        / ATTEMPT#<attempt_id>  one Claid image edit call (a rendition), written exactly once; the
                                     same month, profile and day lines gain edit_credits_used, edits, edits_failed and
                                     edit_credits_at_risk: a line of their own beside the generations' counters, while
                                     `committed` (the budget's figure) holds both
DynamoDB conditions cannot add, so the budget is enforced on `committed` with the bound computed here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from backdrop.events import GenerationDetail, SourceObject, is_final
from backdrop.jobs import refusal_id
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


def is_outcome(job: dict[str, Any] | None) -> bool:
    """Whether a job item holds the job's outcome (its version's verdict), rather than a refusal that a change of
    settings or budget can lift, recorded under the job's id before refusals had ids of their own."""
    if job is None:
        return False
    if "final" in job:
        return bool(job["final"])
    return is_final(str(job.get("status", "")), job.get("reason"))


def _is_refusal(latest: dict[str, Any]) -> bool:
    """A LATEST pointer at a refusal that can be lifted (before `final` was kept: any rejection)."""
    if "final" in latest:
        return latest["final"] is False
    return latest.get("status") == "rejected"


def _moves_pointer(detail: GenerationDetail, current: dict[str, Any] | None) -> bool:
    """Whether the photo's latest-job pointer moves to this record: a newer version always; the same version only
    from a refusal that could be lifted to what came of that version since (its job's outcome, or a later
    refusal). A verdict never gives way to anything of its own version."""
    if current is None or is_newer(detail.source, _source_of(current)):
        return True
    version = detail.source.version_id
    if not version or version != current.get("version_id") or not _is_refusal(current):
        return False
    return detail.final or detail.occurred_at >= str(current.get("occurred_at", ""))


def _first_condition_failed(exc: ClientError) -> bool:
    """A cancelled transaction whose first item's condition failed: the write it guards was already done."""
    return exc.response["Error"]["Code"] == "TransactionCanceledException" and _cancel_codes(exc)[:1] == [
        "ConditionalCheckFailed"
    ]


@dataclass(frozen=True)
class Reservation:
    outcome: Literal["reserved", "already_reserved", "over_budget", "already_recorded"]
    credits: Decimal  # held for the job now (already_reserved: what an earlier holder holds, at least what was asked)
    month: str  # the month they count against: an earlier holder's (a backfill before midnight) is kept
    committed: Decimal | None = None  # after the reservation, when known
    crossed: tuple[int, ...] = ()  # budget alert thresholds (percent) this reservation crossed


_RESERVE_ATTEMPTS = 5


class Ledger:
    def __init__(self, dynamodb: Any, table_name: str, *, monthly_budget: float | Decimal = 0) -> None:
        self._db = dynamodb
        self._table = table_name
        self.budget = _dec(monthly_budget)

    # --- processor side -------------------------------------------------------------------------------
    def reserve(self, job_id: str, month: str, credits: Decimal, *, unless_recorded: bool = False) -> Reservation:
        """Hold the job's worst-case credits. One transaction: a per-job reservation item (so a retried
        processor never holds twice) and the month's `committed` counter, bounded by the budget.

        A job may already hold credits: a backfill reserves before it queues a job, so that what is queued counts
        against the budget as surely as what is running. Then those are the job's: in their month, and topped up
        (under the budget) when the job now needs more. `unless_recorded` (backfill) also refuses to hold credits
        for a job whose outcome is already recorded, in the same transaction."""
        if self.budget and credits > self.budget:
            return Reservation("over_budget", credits, month)
        for _ in range(_RESERVE_ATTEMPTS):
            held = self._item(f"RESERVATION#{job_id}", "RESERVATION")
            if held is None:
                outcome = self._hold(job_id, month, credits, unless_recorded)
                if outcome is not None:
                    return outcome
                continue  # someone reserved meanwhile: look at what they hold
            held_credits, held_month = Decimal(str(held["credits"])), str(held["month"])
            if held_credits >= credits:
                return Reservation("already_reserved", held_credits, held_month)
            outcome = self._top_up(job_id, held_month, held_credits, credits)
            if outcome is not None:
                return outcome
        raise RuntimeError(f"the credit reservation of job {job_id} kept changing under the processor")

    def _hold(self, job_id: str, month: str, credits: Decimal, unless_recorded: bool) -> Reservation | None:
        """A new reservation; None when one appeared meanwhile."""
        update = self._committed_update(month, credits)
        expires = int(datetime.now(UTC).timestamp()) + RESERVATION_TTL_SECONDS
        items: list[dict[str, Any]] = [
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
        if unless_recorded:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": as_attributes({"pk": f"JOB#{job_id}", "sk": "JOB"}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = _cancel_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return None
            if codes[1:2] == ["ConditionalCheckFailed"]:
                return Reservation("over_budget", credits, month)
            if codes[2:3] == ["ConditionalCheckFailed"]:
                return Reservation("already_recorded", credits, month)
            raise
        committed = self._committed(month)
        return Reservation("reserved", credits, month, committed, self._crossed(committed, credits))

    def _top_up(self, job_id: str, month: str, held: Decimal, credits: Decimal) -> Reservation | None:
        """Raise a job's reservation from `held` to `credits` (its settings ask for more now than when it was
        queued), under the budget; None when the reservation changed meanwhile."""
        more = credits - held
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": as_attributes({"pk": f"RESERVATION#{job_id}", "sk": "RESERVATION"}),
                            "UpdateExpression": "SET credits = :credits",
                            "ConditionExpression": "credits = :held",
                            "ExpressionAttributeValues": as_attributes({":credits": credits, ":held": held}),
                        }
                    },
                    {"Update": self._committed_update(month, more)},
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = _cancel_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return None
            if codes[1:2] == ["ConditionalCheckFailed"]:
                return Reservation("over_budget", credits, month)
            raise
        committed = self._committed(month)
        return Reservation("reserved", credits, month, committed, self._crossed(committed, more))

    def _committed_update(self, month: str, credits: Decimal) -> dict[str, Any]:
        """ADD credits to the month's reserved and committed counters, bounded by the budget."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": "TOTAL"}),
            "UpdateExpression": "ADD credits_reserved :c, committed :c",
            "ExpressionAttributeValues": as_attributes({":c": credits}),
        }
        if self.budget:
            update["ConditionExpression"] = "attribute_not_exists(committed) OR committed <= :bound"
            update["ExpressionAttributeValues"].update(as_attributes({":bound": self.budget - credits}))
        return update

    def release_held(self, job_id: str) -> Decimal:
        """Give back whatever a job holds (a backfill's reservation for a job that will not run now). Returns the
        credits given back (0 when none were held)."""
        held = self._item(f"RESERVATION#{job_id}", "RESERVATION")
        if held is None:
            return Decimal(0)
        credits = Decimal(str(held["credits"]))
        return credits if self.release(job_id, str(held["month"]), credits) else Decimal(0)

    def release(self, job_id: str, month: str, credits: Decimal) -> bool:
        """Give back a reservation whose job will be retried later (transient trouble). False if none was held, or
        if it no longer holds `credits` (topped up meanwhile: its new holder gives it back)."""
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": as_attributes({"pk": f"RESERVATION#{job_id}", "sk": "RESERVATION"}),
                            "ConditionExpression": "credits = :c",
                            "ExpressionAttributeValues": as_attributes({":c": credits}),
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
            "final": detail.final,  # False: a refusal a change of settings or budget can lift (events.is_final)
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
            pointer = [self._latest_put(detail, now, current)] if _moves_pointer(detail, current) else []
            try:
                self._db.transact_write_items(TransactItems=items[:1] + pointer + items[1:])
            except ClientError as exc:
                if _first_condition_failed(exc):
                    if self._move_refusal_off_job_id(detail):
                        continue  # the job's id is free now: record its outcome
                    return False
                if pointer and _cancel_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                    continue  # another version's job moved the pointer since the read: decide again
                raise
            return True
        raise RuntimeError(f"the latest-job pointer of {detail.source.key} kept changing under the recorder")

    def _move_refusal_off_job_id(self, detail: GenerationDetail) -> bool:
        """Before this release a budget refusal (or a refused API key) was recorded under the job's own id, which
        made it the version's verdict. When another outcome of that job comes (the photo sent again once the budget
        allowed), the old refusal moves to its refusal id, counters untouched (it stays a record of what happened
        then), and the job's id is free for its outcome. True when it moved."""
        existing = self.job(detail.job_id)
        if existing is None or is_outcome(existing):
            return False  # a verdict: this detail is a redelivery
        status, reason = str(existing["status"]), str(existing.get("reason", ""))
        version = str(existing.get("source_version", "")) or None
        moved_id = refusal_id(str(existing["source_bucket"]), str(existing["source_key"]), version, reason)
        if moved_id == detail.job_id:
            return False  # a refusal already under its own id: this detail is a redelivery
        if detail.status == status and detail.problem is not None and detail.problem.code == reason:
            return False  # the same refusal delivered again
        old = json.loads(str(existing["detail"]))
        moved = {
            **existing,
            "pk": f"JOB#{moved_id}",
            "job_id": moved_id,
            "final": False,
            "detail": json.dumps({**old, "job_id": moved_id, "final": False}),
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": as_attributes(moved),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": as_attributes({"pk": f"JOB#{detail.job_id}", "sk": "JOB"}),
                            "ConditionExpression": "#status = :status AND reason = :reason",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": as_attributes({":status": status, ":reason": reason}),
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            if _cancel_codes(exc)[:1] != ["ConditionalCheckFailed"]:
                raise
            # The same refusal was recorded again under its own id since (the photo sent again while the budget
            # was still spent), with its own counters: the old record goes, and its counters with it.
            self._forget_record(existing)
        return True

    def _forget_record(self, item: dict[str, Any]) -> None:
        """Delete a job item and take it out of the counters it was added to (a refusal: no credits, no images)."""
        counter = f"jobs_{item['status']}"
        month, profile, day = str(item["month"]), str(item.get("profile", "-")), str(item.get("recorded_day", ""))
        keys = ["TOTAL", f"PROFILE#{profile}"] + ([f"DAY#{day}#PROFILE#{profile}"] if day else [])
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": as_attributes({"pk": str(item["pk"]), "sk": "JOB"}),
                            "ConditionExpression": "#status = :status AND reason = :reason",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": as_attributes(
                                {":status": item["status"], ":reason": item.get("reason", "")}
                            ),
                        }
                    },
                    *(
                        {
                            "Update": {
                                "TableName": self._table,
                                "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": sk}),
                                "UpdateExpression": f"ADD {counter} :minus",
                                "ExpressionAttributeValues": as_attributes({":minus": -1}),
                            }
                        }
                        for sk in keys
                    ),
                ]
            )
        except ClientError as exc:
            if not _first_condition_failed(exc):
                raise  # gone already: another delivery did this

    def record_edit(
        self,
        *,
        edit_id: str,
        attempt_id: str,
        month: str,
        profile: str | None,
        succeeded: bool,
        used: float | Decimal,
        reserved: float | Decimal,
        at_risk: float | Decimal,
        fields: dict[str, Any],
    ) -> bool:
        """Write one edit attempt's record and settle its credits, in one transaction. An edit is paid per attempt
        that Claid answered with an image (or may have), so the record is per attempt: a redelivered outcome of the
        same attempt is not counted again. Returns False when it was already recorded."""
        used, reserved, at_risk = _dec(used), _dec(reserved), _dec(at_risk)
        recorded = datetime.now(UTC)
        day = recorded.strftime("%Y-%m-%d")
        status_counter = "edits" if succeeded else "edits_failed"
        counters = {":used": used, ":one": 1, ":risk": at_risk}
        line = f"ADD edit_credits_used :used, {status_counter} :one, edit_credits_at_risk :risk"
        item = {
            **fields,
            "pk": f"EDIT#{edit_id}",
            "sk": f"ATTEMPT#{attempt_id}",
            "edit_id": edit_id,
            "month": month,
            "profile": profile or "-",
            "credits": used,
            "recorded_at": recorded.isoformat(timespec="milliseconds"),
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": as_attributes(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": "TOTAL"}),
                    "UpdateExpression": f"{line}, credits_reserved :unreserve, committed :settle",
                    # As for generations: credits at risk stay committed against the budget.
                    "ExpressionAttributeValues": as_attributes(
                        {**counters, ":unreserve": -reserved, ":settle": used + at_risk - reserved}
                    ),
                }
            },
            *(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": as_attributes({"pk": f"LEDGER#{month}", "sk": sk}),
                        "UpdateExpression": line,
                        "ExpressionAttributeValues": as_attributes(counters),
                    }
                }
                for sk in (f"PROFILE#{profile or '-'}", f"DAY#{day}#PROFILE#{profile or '-'}")
            ),
        ]
        if reserved:
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": as_attributes({"pk": f"RESERVATION#{attempt_id}", "sk": "RESERVATION"}),
                    }
                }
            )
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _first_condition_failed(exc):
                return False
            raise
        return True

    def _latest_put(self, detail: GenerationDetail, now: str, current: dict[str, Any] | None) -> dict[str, Any]:
        source = detail.source
        item = {
            "pk": f"SOURCE#{source.bucket}/{source.key}",
            "sk": "LATEST",
            "job_id": detail.job_id,
            "status": detail.status,
            "final": detail.final,
            "occurred_at": detail.occurred_at,
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
