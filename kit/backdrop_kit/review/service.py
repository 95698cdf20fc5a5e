"""What the review page reads and does against one deployed stack, with the caller's own AWS credentials.

Reading: the jobs of the last days from the table's JobsByDay index, each with its variants (the job record's
outputs) and the photo's current selection. Doing: a choice goes through `Publisher.choose` (the library's one
path, as the policy and a storefront's command do); trying again copies the photo onto itself, so S3 makes a
new version and the upload path (notification, queue, processor, budget, idempotency) runs as for an upload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from backdrop.credits import credits_for
from backdrop.publishing import ChoiceOutcome, Publisher, renditions_of
from backdrop.store.jobs import DynamoJobs
from backdrop.store.reservations import DynamoReservations
from backdrop.store.selections import DynamoSelections, SelectionRecord
from botocore.exceptions import ClientError

from backdrop_kit.deployment import Deployment

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CopySourceTypeDef

STATUSES = ("succeeded", "failed", "rejected")
MAX_DAYS = 90
MAX_UPLOADS = 200  # newest first; a page of more than this is not reviewed by a person in one sitting
# Served with their own type; anything else (an upload can claim any Content-Type) as an opaque download.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/avif", "image/gif"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion"})


class ReviewError(Exception):
    """A request the page made that cannot be done: an HTTP status and a plain message (plus any details)."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


def awaiting_review(row: dict[str, Any]) -> bool:
    """A job whose variants wait for a person: it succeeded, its publish setting is review, nothing chosen yet."""
    return row.get("status") == "succeeded" and row.get("publish") == "review" and row.get("selection_version") is None


@dataclass(frozen=True)
class UploadFilter:
    days: int = 7
    profile: str | None = None
    status: str | None = None
    awaiting: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_DAYS:
            raise ReviewError(400, f"days must be between 1 and {MAX_DAYS}")
        if self.status is not None and self.status not in STATUSES:
            raise ReviewError(400, f"status must be one of {', '.join(STATUSES)}")

    def matches(self, row: dict[str, Any]) -> bool:
        if self.awaiting and not awaiting_review(row):
            return False
        if self.status and row.get("status") != self.status:
            return False
        return not self.profile or row.get("profile") == self.profile


@dataclass(frozen=True)
class Image:
    key: str
    body: Any  # botocore's StreamingBody
    content_type: str
    length: int


def retry_credits(settings: dict[str, Any]) -> float | None:
    """What trying again costs at most: the job's own settings priced by the ledger (None if never resolved)."""
    if "number_of_images" not in settings:
        return None
    return float(credits_for(int(settings["number_of_images"]), bool(settings.get("autoprompt"))))


def describe_selection(current: SelectionRecord | None, made: Any = None) -> dict[str, Any] | None:
    """The photo's current selection item as the page shows it. `made(key)` says whether a rendition is at its key
    yet (a selection's renditions follow its images); without it none is said to be."""
    if current is None:
        return None
    selection = json.loads(current.selection)
    return {
        "version": current.version,
        "job_id": current.job_id,
        "variants": selection["variants"],
        "chosen_by": selection["chosen_by"],
        "published": [target["key"] for target in json.loads(current.targets)],
        "renditions": [
            {
                "key": r.key,
                "spec": r.spec,
                "position": r.position,
                "width": r.width,
                "height": r.height,
                "made": bool(made and made(r.key)),
            }
            for r in renditions_of(current)
        ],
    }


def describe_outcome(outcome: ChoiceOutcome) -> dict[str, Any]:
    """A published choice as JSON; a rejected one raised as a ReviewError carrying its reason."""
    if outcome.published is None:
        rejected = outcome.rejected
        assert rejected is not None
        status = 404 if rejected.reason == "unknown_job" else 409
        raise ReviewError(status, rejected.message, reason=rejected.reason, current_version=rejected.current_version)
    published = outcome.published
    return {
        "job_id": published.job_id,
        "version": published.version,
        "variants": published.selection.variants,
        "published": [image.key for image in published.published],
        "removed": published.removed,
        "renditions": [r.key for r in published.renditions],  # on their way: Claid makes them next
    }


@dataclass
class ReviewService:
    publisher: Publisher
    bucket: str
    actor: str  # the person's AWS identity (an ARN): recorded with every choice they make

    @classmethod
    def for_deployment(cls, deployment: Deployment, session: Any) -> ReviewService:
        """Clients from the person's session (boto3.Session()), names from the stack's outputs."""
        dynamodb, table_name = session.client("dynamodb"), deployment.output("AppTableName")
        publisher = Publisher(
            s3=session.client("s3"),
            events=session.client("events"),
            jobs=DynamoJobs(dynamodb, table_name),
            selections=DynamoSelections(dynamodb, table_name),
            reservations=DynamoReservations(dynamodb, table_name),
            event_bus_name=deployment.output("EventBusName"),
            incoming_prefix=deployment.output("UploadPrefix"),
            generated_prefix=deployment.output("GeneratedPrefix"),
            published_prefix=deployment.output("PublishedPrefix"),
        )
        actor = str(session.client("sts").get_caller_identity()["Arn"])
        return cls(publisher, deployment.output("UploadsBucketName"), actor)

    # --- reading ----------------------------------------------------------------------------------------
    def uploads(self, wanted: UploadFilter) -> list[dict[str, Any]]:
        """Recent jobs that pass the filter, newest first, each described for the page."""
        rows = [row for row in self._recent(wanted.days) if wanted.matches(row)]
        rows.sort(key=lambda row: str(row.get("recorded_at", "")), reverse=True)
        return [self._describe(row) for row in rows[:MAX_UPLOADS]]

    def _recent(self, days: int) -> Iterator[dict[str, Any]]:
        today = datetime.now(UTC).date()
        for back in range(days):
            yield from self.publisher.jobs.recorded_on((today - timedelta(days=back)).isoformat())

    def _describe(self, row: dict[str, Any]) -> dict[str, Any]:
        # The index holds some fields of each job; the rest (its detail, the reason's message) are in its record.
        job = self.publisher.jobs.get(str(row["job_id"]))
        detail = json.loads(job.detail) if job else {}
        current = self.publisher.current(str(row["source_bucket"]), str(row["source_key"]))
        return {
            "job_id": row["job_id"],
            "source_key": row["source_key"],
            "profile": row.get("profile"),
            "status": row.get("status"),
            "reason": row.get("reason"),
            "reason_message": job.reason_message if job else None,
            "recorded_at": row.get("recorded_at"),
            "awaiting": awaiting_review(row),
            "variants": self._variant_keys(detail),
            # The renditions are looked at only for the selection this job holds (an upload awaiting review has none).
            "selection": describe_selection(
                current, self._in_bucket if current and current.job_id == row["job_id"] else None
            ),
            "retry_credits": retry_credits(detail.get("settings") or {}),
        }

    def _variant_keys(self, detail: dict[str, Any]) -> list[str]:
        """Variant N is the Nth output under the generated prefix: numbered as `Publisher.choose` numbers them."""
        keys = (str(output.get("key")) for output in detail.get("outputs", []))
        return [key for key in keys if key.startswith(self.publisher.generated_prefix)]

    def _in_bucket(self, key: str) -> bool:
        try:
            self.publisher.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def image(self, key: str) -> Image:
        """An object under the incoming, generated or published prefix of the uploads bucket; nothing else."""
        prefixes = (self.publisher.incoming_prefix, self.publisher.generated_prefix, self.publisher.published_prefix)
        if not key.startswith(prefixes):
            raise ReviewError(404, "no such image")
        try:
            answer = self.publisher.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise ReviewError(404, f"{key} is not in the bucket") from None
            raise
        content_type = str(answer.get("ContentType", ""))
        served = content_type if content_type in IMAGE_TYPES else "application/octet-stream"
        return Image(key, answer["Body"], served, int(answer["ContentLength"]))

    # --- doing ------------------------------------------------------------------------------------------
    def select(self, job_id: str, variants: list[int], expected_version: int | None) -> dict[str, Any]:
        """Publish the chosen variants of a job, first the main image, as the version the page saw + 1."""
        outcome = self.publisher.choose(
            job_id, variants, chosen_by="person", actor=self.actor, expected_version=expected_version
        )
        return describe_outcome(outcome)

    def retry(self, job_id: str) -> dict[str, Any]:
        """Generate new variants of the job's photo through the upload path: copy the photo onto itself."""
        job = self.publisher.jobs.get(job_id)
        if job is None:
            raise ReviewError(404, f"no job {job_id} in this stack")
        bucket, key = job.source_bucket, job.source_key
        try:
            head = self.publisher.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise ReviewError(409, f"{key} is no longer in the bucket: upload the photo again instead") from None
            raise
        source: CopySourceTypeDef = {"Bucket": bucket, "Key": key}
        if head.get("VersionId") and head["VersionId"] != "null":
            source["VersionId"] = head["VersionId"]  # exactly the object just checked
        answer = self.publisher.s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource=source,
            MetadataDirective="REPLACE",
            Metadata=head.get("Metadata", {}),
            ContentType=head.get("ContentType", "binary/octet-stream"),
        )
        detail = json.loads(job.detail)
        return {
            "job_id": job_id,
            "source_key": key,
            "version_id": answer.get("VersionId"),
            "credits": retry_credits(detail.get("settings") or {}),
        }
