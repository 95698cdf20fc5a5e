"""Job records: each job's outcome (written exactly once), and which job is the latest of each photo.

Items (pk / sk):
  JOB#<job_id>          / JOB     the job's outcome (a verdict, or a refusal recorded under its refusal id); later
                                  gains the selection made for it (selections.py); indexed by day (JobsByDay)
  SOURCE#<bucket>/<key> / LATEST  points at the job of the photo's newest version (S3's order, see versions.py),
                                  not the job recorded last

Recording an outcome is one transaction with the credit ledger's lines (ledger.py) and the removal of the job's
reservation (reservations.py): a record without its credits, or credits counted for a record refused as a
redelivery, would leave the ledger unequal to the sum of the jobs. That atomicity is why `put_outcome` writes items
of three kinds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from backdrop.credits import as_decimal
from backdrop.events import GenerationDetail, SourceObject, is_final
from backdrop.jobs import refusal_id
from backdrop.store.items import (
    Table,
    as_attributes,
    cancel_codes,
    cancelled,
    first_condition_failed,
    from_attributes,
    key,
)
from backdrop.store.ledger import reservation_spent, settlement
from backdrop.versions import is_newer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_LATEST_ATTEMPTS = 8


class JobRecord(BaseModel):
    """A job's stored outcome. Fields added over time have defaults, so older items read as they were written."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    job_id: str
    status: str
    source_bucket: str
    source_key: str
    source_version: str = ""
    profile: str = "-"
    month: str = ""
    images: int = 0
    credits: Decimal = Decimal(0)
    recorded_at: str = ""
    recorded_day: str = ""
    publish: str = "none"
    notified: bool = False
    final: bool | None = None  # None: recorded before refusals were told from verdicts
    detail: str = "{}"  # the Generation Recorded detail, as JSON
    reason: str | None = None
    reason_message: str | None = None
    claid_request_id: str | None = None
    selection: str | None = None  # the selection chosen for this job, as JSON (selections.py)
    selection_version: int | None = None

    @property
    def is_outcome(self) -> bool:
        """Whether this holds the job's outcome (its version's verdict), rather than a refusal that a change of
        settings or budget can lift, recorded under the job's id before refusals had ids of their own."""
        if self.final is not None:
            return self.final
        return is_final(self.status, self.reason)

    def generation(self) -> GenerationDetail:
        """The Generation Recorded detail the record was written from."""
        return GenerationDetail.model_validate_json(self.detail)


def outcome_item(detail: GenerationDetail, recorded: datetime) -> dict[str, Any]:
    """The JOB item of an outcome, as plain values."""
    item: dict[str, Any] = {
        "pk": f"JOB#{detail.job_id}",
        "sk": "JOB",
        "job_id": detail.job_id,
        "status": detail.status,
        "source_bucket": detail.source.bucket,
        "source_key": detail.source.key,
        "source_version": detail.source.version_id or detail.source.etag or "",
        "profile": detail.profile or "-",
        "month": detail.credits.month,
        "images": detail.images,
        "credits": as_decimal(detail.credits.used),
        "recorded_at": recorded.isoformat(timespec="milliseconds"),
        "recorded_day": recorded.strftime("%Y-%m-%d"),  # the JobsByDay index: recent uploads for `backdrop review`
        "publish": str((detail.settings or {}).get("publish", "none")),
        "notified": False,
        "final": detail.final,  # False: a refusal a change of settings or budget can lift (events.is_final)
        "detail": detail.model_dump_json(),
    }
    if detail.problem is not None:
        item["reason"] = detail.problem.code
        item["reason_message"] = detail.problem.message
    if detail.claid is not None and detail.claid.request_id:
        item["claid_request_id"] = detail.claid.request_id
    return item


def pointer_item(detail: GenerationDetail, recorded_at: str) -> dict[str, Any]:
    """The photo's LATEST item pointing at this outcome, with what orders its version against the next."""
    source = detail.source
    order = {"version_id": source.version_id, "sequencer": source.sequencer, "last_modified": source.last_modified}
    return {
        "pk": f"SOURCE#{source.bucket}/{source.key}",
        "sk": "LATEST",
        "job_id": detail.job_id,
        "status": detail.status,
        "final": detail.final,
        "occurred_at": detail.occurred_at,
        "recorded_at": recorded_at,
        **{name: value for name, value in order.items() if value},
    }


def _source_of(latest: dict[str, Any]) -> SourceObject:
    """The version a LATEST item points at, as far as ordering goes (items written before versions were ordered
    keep none: versions.is_newer lets any job replace those)."""
    bucket, _, source_key = str(latest["pk"]).removeprefix("SOURCE#").partition("/")
    return SourceObject(
        bucket=bucket,
        key=source_key,
        version_id=latest.get("version_id"),
        sequencer=latest.get("sequencer"),
        last_modified=latest.get("last_modified"),
    )


def _points_at_refusal(latest: dict[str, Any]) -> bool:
    """A LATEST pointer at a refusal that can be lifted (before `final` was kept: any rejection)."""
    if "final" in latest:
        return latest["final"] is False
    return latest.get("status") == "rejected"


def moves_pointer(detail: GenerationDetail, current: dict[str, Any] | None) -> bool:
    """Whether the photo's LATEST pointer (`current`) moves to this outcome: a newer version always; the same
    version only from a refusal that could be lifted to what came of that version since (its job's outcome, or a
    later refusal). A verdict never gives way to anything of its own version."""
    if current is None or is_newer(detail.source, _source_of(current)):
        return True
    version = detail.source.version_id
    if not version or version != current.get("version_id") or not _points_at_refusal(current):
        return False
    return detail.final or detail.occurred_at >= str(current.get("occurred_at", ""))


def outcome_settlement(detail: GenerationDetail, day: str) -> tuple[str, dict[str, Any], Decimal, Decimal]:
    """The ledger line an outcome adds: (ADD expression, its values, settled credits, reserved credits)."""
    used, at_risk = as_decimal(detail.credits.used), as_decimal(detail.credits.at_risk)
    line = f"ADD credits_used :used, images :images, jobs_{detail.status} :one, credits_at_risk :risk"
    values = {":used": used, ":images": detail.images, ":one": 1, ":risk": at_risk}
    return line, values, used + at_risk, as_decimal(detail.credits.reserved)


class Jobs(Protocol):
    def put_outcome(self, detail: GenerationDetail) -> bool:
        """Record the job's outcome and settle its credits, at most once per job id (False: a redelivery, nothing
        written); the photo's latest-job pointer moves only to a newer version (`moves_pointer`)."""
        ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def latest_job_id(self, bucket: str, source_key: str) -> str | None:
        """The job of the photo's newest version recorded so far, if any."""
        ...

    def mark_notified(self, job_id: str) -> None: ...

    def recorded_on(self, day: str) -> Iterator[dict[str, Any]]:
        """The jobs recorded on a day (YYYY-MM-DD), as the JobsByDay index projects them (some fields only)."""
        ...


class DynamoJobs:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._table = Table(client, table_name)

    def get(self, job_id: str) -> JobRecord | None:
        item = self._table.get(f"JOB#{job_id}", "JOB")
        return JobRecord.model_validate(item) if item else None

    def latest_job_id(self, bucket: str, source_key: str) -> str | None:
        item = self._table.get(f"SOURCE#{bucket}/{source_key}", "LATEST")
        return str(item["job_id"]) if item else None

    def mark_notified(self, job_id: str) -> None:
        self._table.client.update_item(
            TableName=self._table.name,
            Key=key(f"JOB#{job_id}", "JOB"),
            UpdateExpression="SET notified = :t",
            ExpressionAttributeValues=as_attributes({":t": True}),
        )

    def recorded_on(self, day: str) -> Iterator[dict[str, Any]]:
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            IndexName="JobsByDay",
            KeyConditionExpression="recorded_day = :day",
            ExpressionAttributeValues=as_attributes({":day": day}),
        )
        for page in pages:
            yield from (from_attributes(dict(item)) for item in page.get("Items", []))

    def put_outcome(self, detail: GenerationDetail) -> bool:
        recorded = datetime.now(UTC)
        now = recorded.isoformat(timespec="milliseconds")
        line, values, settled, reserved = outcome_settlement(detail, recorded.strftime("%Y-%m-%d"))
        job_put = {
            "Put": {
                "Item": as_attributes(outcome_item(detail, recorded)),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        counted = settlement(
            month=detail.credits.month,
            day=recorded.strftime("%Y-%m-%d"),
            profile=detail.profile,
            line=line,
            values=values,
            settled=settled,
            reserved=reserved,
        )
        spent = [reservation_spent(detail.job_id)] if reserved else []
        # The photo's newest version decides which job is its latest, whatever order the jobs are recorded in.
        # The pointer moves only forward, so a decision made against a stale read can only be "not newer" by
        # mistake when a newer one landed meanwhile, which is right anyway; moving it is conditional on the read.
        for _ in range(_LATEST_ATTEMPTS):
            current = self._table.get(f"SOURCE#{detail.source.bucket}/{detail.source.key}", "LATEST")
            pointer = [self._pointer_put(detail, now, current)] if moves_pointer(detail, current) else []
            try:
                self._table.transact([job_put, *pointer, *counted, *spent])
            except ClientError as exc:
                if first_condition_failed(exc):
                    if self._move_refusal_off_job_id(detail):
                        continue  # the job's id is free now: record its outcome
                    return False
                if pointer and cancel_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                    continue  # another version's job moved the pointer since the read: decide again
                raise
            return True
        raise RuntimeError(f"the latest-job pointer of {detail.source.key} kept changing under the recorder")

    @staticmethod
    def _pointer_put(detail: GenerationDetail, now: str, current: dict[str, Any] | None) -> dict[str, Any]:
        put: dict[str, Any] = {"Item": as_attributes(pointer_item(detail, now))}
        if current is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "job_id = :seen"
            put["ExpressionAttributeValues"] = as_attributes({":seen": current["job_id"]})
        return {"Put": put}

    def _move_refusal_off_job_id(self, detail: GenerationDetail) -> bool:
        """Before refusals had ids of their own, a budget refusal (or a refused API key) was recorded under the
        job's own id, which made it the version's verdict. When another outcome of that job comes (the photo sent
        again once the budget allowed), the old refusal moves to its refusal id, counters untouched (it stays a
        record of what happened then), and the job's id is free for its outcome. True when it moved."""
        existing = self._table.get(f"JOB#{detail.job_id}", "JOB")
        if existing is None or JobRecord.model_validate(existing).is_outcome:
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
            self._table.transact(
                [
                    {"Put": {"Item": as_attributes(moved), "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Delete": self._refusal_still_there(detail.job_id, status, reason)},
                ]
            )
        except ClientError as exc:
            if not cancelled(exc) or cancel_codes(exc)[:1] != ["ConditionalCheckFailed"]:
                raise
            # The same refusal was recorded again under its own id since (the photo sent again while the budget
            # was still spent), with its own counters: the old record goes, and its counters with it.
            self._forget_refusal(existing)
        return True

    @staticmethod
    def _refusal_still_there(job_id: str, status: str, reason: str) -> dict[str, Any]:
        return {
            "Key": key(f"JOB#{job_id}", "JOB"),
            "ConditionExpression": "#status = :status AND reason = :reason",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": as_attributes({":status": status, ":reason": reason}),
        }

    def _forget_refusal(self, item: dict[str, Any]) -> None:
        """Delete a refusal's job item and take it out of the counters it was added to (no credits, no images):
        one transaction, for the same reason as `put_outcome`."""
        counter = f"jobs_{item['status']}"
        month, profile, day = str(item["month"]), str(item.get("profile", "-")), str(item.get("recorded_day", ""))
        lines = ["TOTAL", f"PROFILE#{profile}"] + ([f"DAY#{day}#PROFILE#{profile}"] if day else [])
        job_id = str(item["pk"]).removeprefix("JOB#")
        try:
            self._table.transact(
                [
                    {"Delete": self._refusal_still_there(job_id, str(item["status"]), str(item.get("reason", "")))},
                    *(
                        {
                            "Update": {
                                "Key": key(f"LEDGER#{month}", sk),
                                "UpdateExpression": f"ADD {counter} :minus",
                                "ExpressionAttributeValues": as_attributes({":minus": -1}),
                            }
                        }
                        for sk in lines
                    ),
                ]
            )
        except ClientError as exc:
            if not first_condition_failed(exc):
                raise  # gone already: another delivery did this
