"""Existing photos (a shop's catalogue): what processing them would cost, and sending them down the upload path.

Every object is planned by the processor's own `Processor.plan`, with the deployed processor's environment, so
the settings, the job id and the rejections are the ones the pipeline itself would reach. Nothing here calls
Claid; backfill only puts S3-notification-shaped messages on the jobs queue, so the processor's idempotency
decides what is paid for, exactly as for an upload.

What a backfill queues counts against the budget as surely as what runs: before a job is sent, its worst-case
credits are reserved in the ledger (the processor's own conditional write, bounded by the budget), and the
processor then finds them held for it. So two backfills in a row, or at once, can never promise more than the
budget holds, and a job already queued is not queued again.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlparse

from backdrop.config import ProcessorConfig
from backdrop.credits import credits_for
from backdrop.jobs import Job
from backdrop.once import RunsEveryTime
from backdrop.processing import Processor, profile_loader
from backdrop.renditions import RENDERED_SIDE
from backdrop.store.jobs import Jobs
from backdrop.store.ledger import CreditLedger
from backdrop.store.reservations import Reservations
from backdrop.uploads import Upload, UploadRejected

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

Progress = Callable[[int, int], None]  # (done, total)
# HeadObject + a 64-byte ranged GET + one GetItem per object, all waiting on the network: side by side.
PLANNING_WORKERS = 8


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix). The prefix may be empty."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _no_claid() -> Any:
    raise RuntimeError("planning a catalogue never calls Claid")


def planning_processor(
    env: dict[str, str], *, s3: S3Client, ssm: SSMClient, events: EventBridgeClient, reservations: Reservations
) -> Processor:
    """The processor as deployed (its environment, its profile loader), able to plan and nothing else (`events` is
    never used: planning publishes nothing)."""
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    config = ProcessorConfig.from_env(env)
    return Processor(
        config=config,
        s3=s3,
        events=events,
        reservations=reservations,
        load_profile=profile_loader(SSMProvider(boto3_client=ssm), config.profiles_parameter_path),
        claid=_no_claid,
        guard=RunsEveryTime,  # plans only: never generates
    )


def list_uploads(s3: Any, bucket: str, prefix: str) -> Iterator[Upload]:
    """Every object under the prefix, page by page (S3 answers 1,000 keys at most per call)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield Upload(bucket=bucket, key=obj["Key"], etag=obj.get("ETag", "").strip('"') or None, size=obj["Size"])


@dataclass(frozen=True)
class Planned:
    upload: Upload
    job: Job | None  # None when skipped
    skip_reason: str | None = None  # "already_processed", "in_flight" or the processor's rejection code


@dataclass
class Estimate:
    bucket: str
    prefix: str
    jobs: list[Job] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    per_second: int = 0
    per_minute: int = 0
    latency: float = 10.0
    # The stack's prices of an image edit (RenditionEditCredits, RenditionUpscaleCredits): Claid publishes none.
    edit_credits: float = 1.0
    upscale_credits: float = 2.0

    @property
    def images(self) -> int:
        return sum(job.settings.number_of_images for job in self.jobs)

    @property
    def credits(self) -> Decimal:
        return sum((credits_for(j.settings.number_of_images, j.settings.autoprompt) for j in self.jobs), Decimal(0))

    @property
    def listed(self) -> int:
        return len(self.jobs) + sum(self.skipped.values())

    def rendition_edits(self) -> list[bool]:
        """One entry per image edit the jobs' renditions will take, True when it upscales. Renditions are made of
        what is published: every variant with `publish: all`, the first with `first`, and one image for a photo
        awaiting review (a person usually publishes one). The render is taken as Claid's 1:1 size, 1024 px."""
        edits: list[bool] = []
        for job in self.jobs:
            published = {"all": job.settings.number_of_images, "first": 1, "review": 1}.get(job.settings.publish, 0)
            for spec in job.settings.renditions or ():
                edits += [spec.scale_from(RENDERED_SIDE, RENDERED_SIDE) > 1] * published
        return edits

    @property
    def rendition_credits(self) -> Decimal:
        price = {True: Decimal(str(self.upscale_credits)), False: Decimal(str(self.edit_credits))}
        return sum((price[upscale] for upscale in self.rendition_edits()), Decimal(0))

    def limited(self, limit: int) -> Estimate:
        """The same estimate for the first `limit` jobs (0 = all)."""
        if not limit or limit >= len(self.jobs):
            return self
        skipped = self.skipped + Counter({"over_limit": len(self.jobs) - limit})
        return Estimate(
            self.bucket,
            self.prefix,
            self.jobs[:limit],
            skipped,
            self.per_second,
            self.per_minute,
            self.latency,
            self.edit_credits,
            self.upscale_credits,
        )

    def seconds(self) -> float:
        return time_to_process(len(self.jobs), self.per_second, self.per_minute, self.latency)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": f"s3://{self.bucket}/{self.prefix}",
            "listed": self.listed,
            "to_process": len(self.jobs),
            "images": self.images,
            "credits": float(self.credits),
            "renditions": {
                "edits": len(self.rendition_edits()),
                "upscaled": sum(self.rendition_edits()),
                "credits": float(self.rendition_credits),
                "credits_per_edit": self.edit_credits,
                "credits_per_upscaled_edit": self.upscale_credits,
            },
            "skipped": dict(sorted(self.skipped.items())),
            "profiles": dict(sorted(Counter(job.profile or "-" for job in self.jobs).items())),
            "rate_limit": {"per_second": self.per_second, "per_minute": self.per_minute},
            "latency_seconds": self.latency,
            "seconds": round(self.seconds(), 1),
        }


def time_to_process(calls: int, per_second: int, per_minute: int, latency: float) -> float:
    """Wall time for `calls` Claid calls at the account's limits: calls start no faster than the tighter of
    the two limits allows over a long run, and the last one still takes its latency (0 = no limit)."""
    if calls == 0:
        return 0.0
    rates = [r for r in (float(per_second), per_minute / 60) if r > 0]
    if not rates:
        return latency
    return (calls - 1) / min(rates) + latency


def plan_catalogue(
    processor: Processor, records: Jobs, uploads: Iterable[Upload], *, progress: Progress | None = None
) -> list[Planned]:
    """Each upload planned as the processor would plan it, and checked against the job records."""

    def plan_one(upload: Upload) -> Planned:
        try:
            outcome = processor.plan(upload)
        except UploadRejected as problem:  # outside the incoming prefix, or a folder marker
            return Planned(upload, None, problem.reason)
        if not isinstance(outcome, Job):
            return Planned(upload, None, outcome.problem.code if outcome.problem else "rejected")
        # The job id is deterministic: a job with a recorded outcome was already paid for (or failed for good). A
        # refusal that a change of settings or budget lifts is not an outcome: the photo is processed again.
        record = records.get(outcome.job_id)
        if record is not None and record.is_outcome:
            return Planned(upload, None, "already_processed")
        # Credits held and no outcome yet: queued by a backfill, or being generated right now.
        if processor.reservations.holds(outcome.job_id):
            return Planned(upload, None, "in_flight")
        return Planned(upload, outcome)

    listed = list(uploads)
    planned: list[Planned] = []
    with ThreadPoolExecutor(max_workers=PLANNING_WORKERS, thread_name_prefix="plan") as pool:
        for item in pool.map(plan_one, listed):
            planned.append(item)
            if progress is not None:
                progress(len(planned), len(listed))
    return planned


def estimate(
    processor: Processor,
    records: Jobs,
    bucket: str,
    prefix: str,
    *,
    latency: float,
    progress: Progress | None = None,
    edit_prices: tuple[float, float] = (1.0, 2.0),
) -> Estimate:
    """`edit_prices`: the stack's credits per image edit and per upscaled edit (its Rendition*Credits parameters)."""
    planned = plan_catalogue(processor, records, list_uploads(processor.s3, bucket, prefix), progress=progress)
    result = Estimate(
        bucket,
        prefix,
        per_second=processor.config.claid_requests_per_second,
        per_minute=processor.config.claid_requests_per_minute,
        latency=latency,
        edit_credits=edit_prices[0],
        upscale_credits=edit_prices[1],
    )
    for item in planned:
        if item.job is not None:
            result.jobs.append(item.job)
        else:
            result.skipped[item.skip_reason or "rejected"] += 1
    return result


def budget_left(reservations: Reservations, ledger: CreditLedger, month: str) -> Decimal | None:
    """Credits the month's budget still allows (reserved and at-risk credits count as spent); None = no budget."""
    if not reservations.budget:
        return None
    committed = Decimal(str(ledger.month_usage(month)["total"].get("committed", 0)))
    return max(Decimal(0), reservations.budget - committed)


def notification_for(job: Job, now: datetime | None = None) -> dict[str, Any]:
    """An S3 ObjectCreated notification for the job's object and version, as S3 itself would write it."""
    obj: dict[str, Any] = {"key": quote_plus(job.key, safe="/"), "eTag": job.etag or ""}
    if job.version_id:
        obj["versionId"] = job.version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "userIdentity": {"principalId": "backdrop-backfill"},
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": job.bucket}, "object": obj},
            }
        ]
    }


class BudgetTaken(RuntimeError):
    """The budget could not hold every job of a backfill: nothing was held or sent."""


@dataclass
class Held:
    """Jobs whose credits a backfill holds (reserved in the ledger), ready to send; and those it left alone."""

    jobs: list[Job] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def hold_credits(reservations: Reservations, jobs: list[Job], *, progress: Progress | None = None) -> Held:
    """Reserve each job's worst case, as the processor would, before anything is sent: all of them or none. A job
    held or recorded since it was planned (another backfill, the upload's own notification) is left out. Raises
    BudgetTaken, having given back what it held, when the budget cannot hold them all."""
    held = Held()
    try:
        for done, job in enumerate(jobs, start=1):
            credits = credits_for(job.settings.number_of_images, job.settings.autoprompt)
            reservation = reservations.reserve(job.job_id, job.month, credits, unless_recorded=True)
            if reservation.outcome == "reserved":
                held.jobs.append(job)
            elif reservation.outcome == "already_reserved":
                held.skipped["in_flight"] += 1
            elif reservation.outcome == "already_recorded":
                held.skipped["already_processed"] += 1
            else:
                raise BudgetTaken(
                    f"the budget was taken while credits were being reserved ({len(held.jobs)} of {len(jobs)} "
                    "held): by uploads or another backfill; nothing was sent"
                )
            if progress is not None:
                progress(done, len(jobs))
    except BaseException:  # Ctrl-C and SIGTERM included: a job never sent must hold nothing
        release(reservations, held.jobs)
        raise
    return held


def release(reservations: Reservations, jobs: Iterable[Job]) -> None:
    """Give back what a backfill holds for jobs it did not send."""
    for job in jobs:
        reservations.release(job.job_id, job.month, credits_for(job.settings.number_of_images, job.settings.autoprompt))


def send_jobs(
    sqs: Any,
    queue_url: str,
    jobs: list[Job],
    *,
    reservations: Reservations | None = None,
    progress: Progress | None = None,
) -> int:
    """Put one notification per job on the jobs queue, ten to a request. Returns how many were sent. With
    `reservations`, the jobs hold credits (hold_credits): those of jobs not sent are given back if sending stops (a
    message whose fate is unknown too: if it did arrive, the processor reserves for it again, under the budget)."""
    sent = 0
    pending = 0  # jobs[pending:] are not known to be on the queue
    try:
        while pending < len(jobs):
            chunk = jobs[pending : pending + 10]
            answer = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": json.dumps(notification_for(job))} for i, job in enumerate(chunk)
                ],
            )
            failed = {int(entry["Id"]) for entry in answer.get("Failed", [])}
            if failed and reservations is not None:
                release(reservations, [job for i, job in enumerate(chunk) if i in failed])
            pending += len(chunk)
            sent += len(chunk) - len(failed)
            if failed:
                first = answer["Failed"][0]
                raise RuntimeError(f"the jobs queue refused messages after {sent} were sent: {first.get('Message')}")
            if progress is not None:
                progress(sent, len(jobs))
    except BaseException:  # Ctrl-C and SIGTERM included
        if reservations is not None:
            release(reservations, jobs[pending:])
        raise
    return sent


def describe(result: Estimate) -> str:
    """The estimate for a person."""
    lines = [
        f"s3://{result.bucket}/{result.prefix}: {result.listed:,} objects",
        f"  to process   {len(result.jobs):,} photos -> {result.images:,} images, {result.credits} credits",
    ]
    edits = result.rendition_edits()
    if edits:
        lines.append(
            f"  renditions   {len(edits):,} image edits ({sum(edits):,} upscaled) -> {result.rendition_credits} "
            f"credits at {result.edit_credits:g} per edit, {result.upscale_credits:g} per upscaled edit (the stack's "
            "prices: check them against your Claid plan)"
        )
    for reason, count in sorted(result.skipped.items()):
        lines.append(f"  skipped      {count:,} {reason.replace('_', ' ')}")
    limit = " and ".join(
        part
        for part in (
            f"{result.per_second}/s" if result.per_second else "",
            f"{result.per_minute}/min" if result.per_minute else "",
        )
        if part
    )
    minutes = math.ceil(result.seconds() / 60)
    lines.append(
        f"  time         about {minutes:,} min at {limit or 'no rate limit'} with {result.latency:g} s per Claid call"
    )
    return "\n".join(lines)
