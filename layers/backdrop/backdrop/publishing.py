"""Choosing and publishing: the one code path that turns a choice of variants into images at stable keys.

A choice comes three ways and all of them call `Publisher.choose`: the `publish` policy when a generation is
recorded (`apply_policy`), a storefront's `Select Variants` command (`command`), and a person on the review page.

Stable keys: the photo's whole path under the watched prefix, extension kept, is a folder, and the Nth chosen
variant is the file N.<ext> in it (`incoming/summer/cup.png` -> `published/summer/cup.png/1.jpeg`). The folder
ends at the key's last `/` and the file name holds none, so the source key can be read back from any published key:
no two photos can share one (docs/decisions.md 33).

Renditions (backdrop.renditions) are planned when a choice is claimed, from the job's `renditions` setting: the
record lists them (`renditions`: each stable key and the file Claid will write for it under the generated prefix)
and owns their keys as it owns the images'. The renditions function has Claid make the files; whoever makes the
objects match the record copies the renditions already made and removes, from a rendition key, whatever an older
selection left there, so a rendition of an older choice never stands in for, or outlives, a newer one's.

The records: each photo's current selection (backdrop.store.selections: version, job, variants, the published
keys it maps to, its renditions, and every key an earlier selection of this photo listed), and the job records it
is chosen from (backdrop.store.jobs). The version is per photo, so it orders choices across re-uploads too.

Races: a choice claims version N+1 with a conditional write on the photo's record (in one transaction with the job
record, `Selections.claim`); a second choice made against the same N loses and changes nothing (`version_conflict`).
Copying the images happens after the claim, so a slow copy of an older version can land after a newer one: every chooser
re-reads the item after copying and applies what it holds until the two agree, so the objects end as the
record says and keys the winning selection no longer uses are deleted. The record is the only owner: a key is
deleted only if the photo's own record lists it, never because of its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backdrop.events import SCHEMA_VERSION, EventDetail, OutputObject, SourceObject, Timestamp, open_set, put_on_bus
from backdrop.keys import file_extension, published_folder, published_key
from backdrop.measures import measure
from backdrop.renditions import PlannedRendition, parse_renditions, plan
from backdrop.settings import PublishPolicy
from backdrop.store.jobs import JobRecord, Jobs
from backdrop.store.reservations import Reservations
from backdrop.store.selections import SelectionRecord, Selections
from backdrop.uploads import content_type

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

__all__ = ["PublishPolicy", "Publisher", "SelectVariantsCommand"]

ChosenBy = Literal["policy", "command", "person"]
RejectionReason = Literal[
    "malformed_command",  # the command's detail does not validate
    "unknown_job",  # no such job
    "job_in_flight",  # the job's Claid call has not been recorded yet
    "job_not_succeeded",  # a failed or rejected job has no variants
    "no_such_variant",  # variant 5 of 4, or a variant the job did not produce
    "superseded_job",  # the photo has a newer job; its published image belongs to that one
    "version_conflict",  # another choice won the same version first
    "variant_missing",  # the variant's image is gone from generated/ (expired by the lifecycle rule)
    "source_outside_prefix",  # the photo is not under the watched prefix (changed since?): it has no stable keys
]

VARIANTS_PUBLISHED = "Variants Published"
SELECTION_REJECTED = "Selection Rejected"
SELECT_VARIANTS = "Select Variants"  # the command a storefront puts on the bus, with its own source

METADATA_JOB = "backdrop-job-id"
METADATA_VARIANT = "backdrop-variant"
METADATA_VERSION = "backdrop-selection-version"
METADATA_SOURCE = "backdrop-source-key"  # percent-encoded: S3 metadata is ASCII
METADATA_RENDITION = "backdrop-rendition"  # on a rendition: its size, format and fit ("2048 webp")

_MAX_CONVERGE_ROUNDS = 5
# HeadObject has no body, so its error code is the status: 404, or 403 for a missing key without s3:ListBucket.
_ABSENT = {"403", "404", "NoSuchKey"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Detail(EventDetail):
    """Open to fields added within 1.x, as every event detail; the storefront's command is closed (below)."""


Variant = Annotated[int, Field(ge=1, le=4)]


class SelectVariantsCommand(BaseModel):
    """The detail of a storefront's `Select Variants` command. Closed: a field backdrop does not know is refused
    (`malformed_command`), never ignored, since ignoring it could carry out a different choice than the one meant."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    job_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    # 1-based variant numbers, first the main image: published at <photo path>/1.<ext>, the next at …/2.<ext>, ...
    variants: Annotated[list[Variant], Field(min_length=1, max_length=4)]
    # The selection version the storefront saw; when given, a choice made meanwhile wins and this one is refused.
    expected_version: Annotated[int, Field(ge=0)] | None = None
    chosen_by: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$")] | None = None
    request_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$")] | None = None


class Selection(_Detail):
    version: int
    job_id: str
    variants: list[int]
    chosen_by: ChosenBy
    actor: str  # "policy first", the command's event source (and its chosen_by), or the person's AWS identity
    chosen_at: Timestamp


class PublishedImage(_Detail):
    variant: int
    bucket: str
    key: str  # the stable key a storefront links once
    from_key: str  # the variant under generated/
    format: str


class RenditionKey(_Detail):
    """A rendition this selection asks for, at its stable key; `Renditions Published` says when it is there."""

    position: int  # of the published image it is made from (1 = the main image)
    variant: int
    spec: str  # "2048 webp", "2000x2500 jpeg canvas"
    bucket: str
    key: str
    width: int  # the box asked for
    height: int
    format: str
    fit: str


class VariantsPublishedDetail(_Detail):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    job_id: str
    source: SourceObject
    profile: str | None = None
    version: int  # per photo: a storefront keeps the highest it has seen and drops older events
    selection: Selection
    published: list[PublishedImage]
    removed: list[str] = Field(default_factory=list)  # stable keys of this photo no longer published
    # The renditions this selection asks for (the job's `renditions` setting); made after this event, then told in
    # Renditions Published (or Renditions Failed). The count lets a rule route only selections that have some.
    renditions: list[RenditionKey] = Field(default_factory=list)
    rendition_count: int = 0
    request_id: str | None = None
    occurred_at: Timestamp = Field(default_factory=_now)


class SelectionRejectedDetail(_Detail):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    job_id: str | None = None
    reason: Annotated[
        RejectionReason,
        open_set(*RejectionReason.__args__, description="why the choice changed nothing; new reasons may come in 1.x"),
    ]
    message: str
    chosen_by: ChosenBy
    actor: str
    variants: list[int] = Field(default_factory=list)
    current_version: int | None = None
    request_id: str | None = None
    occurred_at: Timestamp = Field(default_factory=_now)


class SelectionRefused(Exception):
    def __init__(self, reason: RejectionReason, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.reason: RejectionReason = reason
        self.message = message
        self.current_version = current_version


@dataclass(frozen=True)
class ChoiceOutcome:
    """What one choice came to: published (with the event's detail) or rejected (with its detail)."""

    published: VariantsPublishedDetail | None = None
    rejected: SelectionRejectedDetail | None = None

    @property
    def ok(self) -> bool:
        return self.published is not None


@dataclass
class Publisher:
    """Validates a choice against the job's record, claims the next selection version, copies the chosen
    variants to their stable keys, removes the photo's keys no longer chosen, and says so on the bus."""

    s3: S3Client
    events: EventBridgeClient
    jobs: Jobs  # the records choices are made from
    selections: Selections  # each photo's selection
    reservations: Reservations  # read only: a job holding credits is still being generated
    event_bus_name: str
    incoming_prefix: str = "incoming/"
    generated_prefix: str = "generated/"
    published_prefix: str = "published/"

    # --- the three ways in -------------------------------------------------------------------------------
    def apply_policy(self, detail: dict[str, Any]) -> ChoiceOutcome | None:
        """A `Generation Recorded` detail: publish by the job's `publish` setting. None when the policy asks
        for nothing now (none, review, not succeeded, a newer job, or a choice already made for this job)."""
        policy = str((detail.get("settings") or {}).get("publish") or "none")
        job_id = str(detail.get("job_id") or "")
        if detail.get("status") != "succeeded" or policy not in ("all", "first") or not job_id:
            return None
        bucket, source_key = str(detail["source"]["bucket"]), str(detail["source"]["key"])
        current = self.current(bucket, source_key)
        if current is not None and current.job_id == job_id:
            # Already chosen for this job (a redelivery, or a person was quicker): theirs stands. A redelivery may
            # follow an attempt that died between its claim and its copies, so the objects are made to match the
            # record again (copies of the same variants: harmless when they are already there).
            self.converge(bucket, source_key)
            return None
        images = int(detail.get("images") or len(detail.get("outputs") or []))
        variants = list(range(1, images + 1)) if policy == "all" else [1]
        return self.choose(job_id, variants, chosen_by="policy", actor=f"policy {policy}", only_latest=True)

    def command(self, source: str, detail: Any) -> ChoiceOutcome:
        """A storefront's `Select Variants` command; a detail that does not validate is refused, not raised."""
        try:
            cmd = SelectVariantsCommand.model_validate(detail)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'detail'}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            job_id = detail.get("job_id") if isinstance(detail, dict) else None
            return self._reject(
                SelectionRejectedDetail(
                    job_id=job_id if isinstance(job_id, str) and len(job_id) <= 64 else None,
                    reason="malformed_command",
                    message=f"Select Variants refused: {problems}"[:1000],
                    chosen_by="command",
                    actor=source[:256],
                )
            )
        actor = f"{source} ({cmd.chosen_by})" if cmd.chosen_by else source
        return self.choose(
            cmd.job_id,
            cmd.variants,
            chosen_by="command",
            actor=actor,
            expected_version=cmd.expected_version,
            request_id=cmd.request_id,
        )

    def choose(
        self,
        job_id: str,
        variants: list[int],
        *,
        chosen_by: ChosenBy,
        actor: str,
        expected_version: int | None = None,
        request_id: str | None = None,
        only_latest: bool = False,
    ) -> ChoiceOutcome:
        """The one code path: check, claim a version, publish, tell the bus. Never raises for a bad choice."""
        try:
            selection, job, targets, renditions = self._claim(
                job_id, variants, chosen_by, actor, expected_version, only_latest
            )
        except SelectionRefused as refused:
            return self._reject(
                SelectionRejectedDetail(
                    job_id=job_id,
                    reason=refused.reason,
                    message=refused.message,
                    chosen_by=chosen_by,
                    actor=actor,
                    variants=[v for v in variants if isinstance(v, int)][:4],
                    current_version=refused.current_version,
                    request_id=request_id,
                )
            )
        removed = self.converge(job.source_bucket, job.source_key)
        generation = job.generation()
        published = VariantsPublishedDetail(
            job_id=job_id,
            source=generation.source,
            profile=generation.profile,
            version=selection.version,
            selection=selection,
            published=targets,
            removed=removed,
            renditions=[
                RenditionKey.model_validate(r.model_dump(include=set(RenditionKey.model_fields))) for r in renditions
            ],
            rendition_count=len(renditions),
            request_id=request_id,
        )
        put_on_bus(self.events, self.event_bus_name, VARIANTS_PUBLISHED, published)
        # Counted where measures are collected: the publisher function (a person's choice is made on their own
        # machine, by `backdrop review`, outside any Lambda).
        measure("SelectionsPublished", dimension=("ChosenBy", chosen_by))
        return ChoiceOutcome(published=published)

    def _reject(self, rejected: SelectionRejectedDetail) -> ChoiceOutcome:
        """Every refusal ends the same way: said on the bus and counted, nothing else changed."""
        put_on_bus(self.events, self.event_bus_name, SELECTION_REJECTED, rejected)
        measure("SelectionsRejected", dimension=("Reason", rejected.reason))
        return ChoiceOutcome(rejected=rejected)

    # --- reading ----------------------------------------------------------------------------------------
    def current(self, bucket: str, source_key: str) -> SelectionRecord | None:
        """The photo's current selection, or None."""
        return self.selections.current(bucket, source_key)

    # --- claiming a version -------------------------------------------------------------------------------
    def _claim(
        self,
        job_id: str,
        variants: list[int],
        chosen_by: ChosenBy,
        actor: str,
        expected_version: int | None,
        only_latest: bool,
    ) -> tuple[Selection, JobRecord, list[PublishedImage], list[PlannedRendition]]:
        job = self.jobs.get(job_id)
        if job is None:
            if self.reservations.holds(job_id):
                raise SelectionRefused(
                    "job_in_flight", f"job {job_id} is still being generated; choose once it is recorded"
                )
            raise SelectionRefused("unknown_job", f"no job {job_id} in this stack")
        if job.status != "succeeded":
            raise SelectionRefused(
                "job_not_succeeded",
                f"job {job_id} {job.status} ({job.reason or 'no reason'}): it has no variants",
            )
        # Only images the pipeline wrote under the generated prefix are ever published.
        generation = job.generation()
        outputs = [o for o in generation.outputs if str(o.key).startswith(self.generated_prefix)]
        if len(set(variants)) != len(variants) or not variants:
            raise SelectionRefused("no_such_variant", f"variants {variants}: name each variant once, at least one")
        missing = [v for v in variants if not 1 <= v <= len(outputs)]
        if missing:
            raise SelectionRefused(
                "no_such_variant",
                f"variant {', '.join(map(str, missing))} of {len(outputs)}: job {job_id} has variants 1-{len(outputs)}",
            )
        bucket, source_key = job.source_bucket, job.source_key
        if only_latest and self.jobs.latest_job_id(bucket, source_key) not in (None, job_id):
            raise SelectionRefused("superseded_job", f"{source_key} has a newer job than {job_id}")
        current = self.current(bucket, source_key)
        version = current.version if current else 0
        if expected_version is not None and expected_version != version:
            raise SelectionRefused(
                "version_conflict",
                f"the selection of {source_key} is at version {version}, not {expected_version}: "
                "reload and choose again",
                current_version=version,
            )
        try:
            folder = published_folder(source_key, self.incoming_prefix, self.published_prefix)
        except ValueError:
            raise SelectionRefused(
                "source_outside_prefix",
                f"{source_key} is not under the watched prefix {self.incoming_prefix} (was UploadPrefix changed?): "
                "its stable keys are not defined",
                current_version=version,
            ) from None
        targets = [
            PublishedImage(
                variant=v,
                bucket=bucket,
                key=published_key(folder, position, file_extension(str(outputs[v - 1].key), outputs[v - 1].format)),
                from_key=str(outputs[v - 1].key),
                format=outputs[v - 1].format,
            )
            for position, v in enumerate(variants, start=1)
        ]
        for target in targets:
            try:
                self.s3.head_object(Bucket=bucket, Key=target.from_key)
            except ClientError:
                raise SelectionRefused(
                    "variant_missing",
                    f"variant {target.variant} ({target.from_key}) is no longer in the bucket: expired from the "
                    "generated prefix? Try again to generate new variants",
                    current_version=version,
                ) from None
        renditions = self._plan_renditions(generation.settings or {}, targets, outputs, folder, bucket)
        selection = Selection(
            version=version + 1, job_id=job_id, variants=variants, chosen_by=chosen_by, actor=actor, chosen_at=_now()
        )
        # Every key an earlier selection listed stays listed, so the record alone says what this photo may have
        # published: a slow copy of an older choice, or one that died before cleaning up, is removed by the next
        # chooser, and a record from before decisions 33 hands its `published/cup-2.jpeg` on to be cleaned up.
        earlier = set(_retired(current)) | set(_listed(current))
        keep = {t.key for t in targets} | {r.key for r in renditions}
        record = SelectionRecord(
            bucket=bucket,
            source_key=source_key,
            version=selection.version,
            job_id=job_id,
            selection=selection.model_dump_json(),
            targets=json.dumps([t.model_dump() for t in targets]),
            renditions=json.dumps([r.model_dump() for r in renditions]),
            retired=json.dumps(sorted(earlier - keep)),
        )
        if not self.selections.claim(record):
            now = self.current(bucket, source_key)
            raise SelectionRefused(
                "version_conflict",
                f"another choice for {source_key} was made at the same time and won (version "
                f"{now.version if now else '?'}); this one changed nothing",
                current_version=now.version if now else None,
            )
        return selection, job, targets, renditions

    @staticmethod
    def _plan_renditions(
        settings: dict[str, Any],
        targets: list[PublishedImage],
        outputs: list[OutputObject],
        folder: str,
        bucket: str,
    ) -> list[PlannedRendition]:
        """The job's `renditions` setting for each published image, in the order chosen. The setting was checked
        when the upload was planned; a record from before it simply has none."""
        specs = parse_renditions(str(settings.get("renditions") or ""), str(settings.get("output_format") or "jpeg"))
        planned = []
        for position, target in enumerate(targets, start=1):
            output = outputs[target.variant - 1]
            for spec in specs:
                planned.append(
                    plan(
                        spec,
                        position=position,
                        variant=target.variant,
                        bucket=bucket,
                        folder=folder,
                        variant_key=target.from_key,
                        source_size=(output.width, output.height),
                    )
                )
        return planned

    # --- making the objects match the record ----------------------------------------------------------------
    def converge(self, bucket: str, source_key: str, *, images: bool = True) -> list[str]:
        """Apply the photo's recorded selection to S3 until a re-read after applying shows the same version.
        Returns the stable keys deleted because the selection no longer uses them. `images=False` (the renditions
        function, whose copies never touch an image's key) leaves the images to the choosers, so they are not
        copied again, as new object versions, each time a rendition is made."""
        removed: list[str] = []
        applied = None
        for _ in range(_MAX_CONVERGE_ROUNDS):
            record = self.current(bucket, source_key)
            if record is None or record.version == applied:
                return removed
            removed += self._apply(bucket, source_key, record, images)
            applied = record.version
        return removed

    def _apply(self, bucket: str, source_key: str, record: SelectionRecord, images: bool = True) -> list[str]:
        targets = [PublishedImage.model_validate(t) for t in json.loads(record.targets)]
        selection = Selection.model_validate_json(record.selection)
        for target in targets if images else ():
            try:
                self.s3.copy_object(
                    Bucket=target.bucket,
                    Key=target.key,
                    CopySource={"Bucket": target.bucket, "Key": target.from_key},
                    MetadataDirective="REPLACE",
                    ContentType=content_type(file_extension(target.key, target.format)),
                    Metadata={
                        METADATA_JOB: selection.job_id,
                        METADATA_VARIANT: str(target.variant),
                        METADATA_VERSION: str(selection.version),
                        METADATA_SOURCE: quote(source_key, safe="/"),
                    },
                )
            except ClientError as exc:
                # Checked before the claim; gone since (expired by the lifecycle rule at that moment): the record
                # stands and the event source's retry applies it again or keeps the event in the DLQ.
                raise RuntimeError(f"cannot publish {target.from_key}: {exc.response['Error']['Code']}") from None
        renditions = renditions_of(record)
        for rendition in renditions:
            self._apply_rendition(source_key, selection, rendition)
        keep = {t.key for t in targets} | {r.key for r in renditions}
        return [key for key in _retired(record) if key not in keep and self._delete_own(bucket, source_key, key)]

    def _apply_rendition(self, source_key: str, selection: Selection, rendition: PlannedRendition) -> None:
        """Copy a rendition Claid has made to its stable key. One not made yet has nothing at its key: whatever
        is there came from an older selection (another variant, or the same key at another position) and would
        stand in for this one's, so it goes until this selection's is made."""
        if not self._exists(rendition.bucket, rendition.from_key):
            if self._exists(rendition.bucket, rendition.key):
                self.s3.delete_object(Bucket=rendition.bucket, Key=rendition.key)
            return
        metadata = {
            METADATA_JOB: selection.job_id,
            METADATA_VARIANT: str(rendition.variant),
            METADATA_VERSION: str(selection.version),
            METADATA_SOURCE: quote(source_key, safe="/"),
            METADATA_RENDITION: rendition.spec,
        }
        if self._metadata(rendition.bucket, rendition.key) == metadata:
            return  # this selection's copy is there already: another copy would only add an object version
        self.s3.copy_object(
            Bucket=rendition.bucket,
            Key=rendition.key,
            CopySource={"Bucket": rendition.bucket, "Key": rendition.from_key},
            MetadataDirective="REPLACE",
            ContentType=content_type(rendition.format),
            Metadata=metadata,
        )

    def _exists(self, bucket: str, key: str) -> bool:
        """HeadObject, where 403 (no s3:ListBucket) and 404 both mean the key is not there."""
        return self._metadata(bucket, key) is not None

    def _metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        """The object's user metadata, or None when it is not there (403 without s3:ListBucket, or 404)."""
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _ABSENT:
                return None
            raise
        return dict(head.get("Metadata", {}))

    def _delete_own(self, bucket: str, source_key: str, key: str) -> bool:
        """Delete a key the photo's record lists, if it is there and this photo's: True when it was deleted.

        Looked at first, so a key long gone costs a HeadObject and not, in a versioned bucket, one more delete
        marker on every choice. Without s3:ListBucket (not granted: nothing is listed) S3 answers 403, not 404,
        for a key that is not there, so both mean absent. A file directly in the photo's own folder is this
        photo's by construction (a subfolder is not: `incoming/cup.png/x.png` is another photo); any other key (a
        record from before decisions 33, or from another published prefix) is deleted only if its metadata names
        this photo, since under the old names `cup.png` and `cup-2.png` both wrote `published/cup-2.jpeg`."""
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _ABSENT:
                return False
            raise
        folder = published_folder(source_key, self.incoming_prefix, self.published_prefix)
        own_file = key.rpartition("/")[0] + "/" == folder
        if not own_file and unquote(head.get("Metadata", {}).get(METADATA_SOURCE, "")) != source_key:
            return False
        self.s3.delete_object(Bucket=bucket, Key=key)
        return True


def _retired(record: SelectionRecord | None) -> list[str]:
    """The keys earlier selections of the photo listed (none in a record from before decisions 33)."""
    return list(json.loads(record.retired)) if record and record.retired is not None else []


def renditions_of(record: SelectionRecord | None) -> list[PlannedRendition]:
    """The renditions a selection asks for (none in a record from before renditions, decisions 38)."""
    if not record or record.renditions is None:
        return []
    return [PlannedRendition.model_validate(r) for r in json.loads(record.renditions)]


def _listed(record: SelectionRecord | None) -> list[str]:
    """Every stable key the selection lists: its images and its renditions."""
    if not record:
        return []
    return [t["key"] for t in json.loads(record.targets)] + [r.key for r in renditions_of(record)]
