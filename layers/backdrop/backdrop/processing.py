"""The processor's logic: an upload becomes a planned job or a rejection; a job becomes one generation outcome,
published, or a hand-back to the queue with the time to wait."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from botocore.exceptions import ClientError

from backdrop.alerts import SendsAlerts
from backdrop.claid.client import ClaidClient, Deadline, SceneResult
from backdrop.claid.errors import (
    ClaidAuthError,
    ClaidError,
    ClaidOutcomeUnknown,
    ClaidOutOfCredits,
    ClaidTransientError,
)
from backdrop.claid.request import build_scene_request
from backdrop.config import ProcessorConfig
from backdrop.credits import credits_for
from backdrop.events import (
    ClaidCall,
    Credits,
    GenerationDetail,
    InputKind,
    OutputObject,
    Problem,
    SourceObject,
    put_on_bus,
)
from backdrop.handback import HandBack
from backdrop.jobs import (
    Job,
    current_month,
    output_prefix_for,
    plan_job,
    refusal_id,
    rejection_id,
    storage_uri,
    version_job_id,
)
from backdrop.keys import S3_MAX_KEY_BYTES, longest_published_key
from backdrop.limits import check_metadata, check_profile_document, check_profile_name
from backdrop.measures import measure
from backdrop.once import Guarded, InProgressElsewhere, Step
from backdrop.setting_layers import metadata_to_values, resolve
from backdrop.settings import SettingNote, SettingsError
from backdrop.store.reservations import Reservations
from backdrop.uploads import Upload, UploadRejected, check_key, inspect_upload, profile_from_key

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

ProfileLoader = Callable[[str], Mapping[str, Any] | None]
# Wraps the step that spends credits so that it runs at most once per job: once.Once in Lambda (Powertools
# idempotency on DynamoDB), once.RunsEveryTime in unit tests.
Guard = Callable[[Step[Job, GenerationDetail]], Guarded[Job, GenerationDetail]]


class _JobFields(TypedDict):
    """What a generation's detail says about its job, whatever the outcome."""

    job_id: str
    source: SourceObject
    profile: str | None
    settings: dict[str, Any]
    notes: list[SettingNote]
    output_prefix: str
    autoprompt: bool


class Refused(Exception):
    """A refusal that a change of settings or budget can lift (events.LIFTABLE_PROBLEMS), raised out of the guarded
    step so that the idempotency layer keeps nothing: the job stays free, and is processed (and charged, once) when
    the photo is sent again after the change. The outcome to publish is `detail`, under its refusal id."""

    def __init__(self, detail: GenerationDetail) -> None:
        super().__init__(detail.problem.message if detail.problem else detail.status)
        self.detail = detail


def refused(job: Job, status: Literal["rejected", "failed"], problem: Problem, **fields: Any) -> Refused:
    """The refusal of a job, recorded under an id of its own (jobs.refusal_id), never the job's."""
    detail = GenerationDetail(
        status=status,
        job_id=refusal_id(job.bucket, job.key, job.version_id or job.etag, problem.code),
        source=SourceObject(
            bucket=job.bucket,
            key=job.key,
            version_id=job.version_id,
            etag=job.etag,
            sequencer=job.sequencer,
            last_modified=job.last_modified,
        ),
        profile=job.profile,
        settings=job.settings.model_dump(mode="json", exclude_none=True),
        notes=list(job.notes),
        autoprompt=job.settings.autoprompt,
        credits=Credits(month=job.month),
        problem=problem,
        **fields,
    )
    return Refused(detail)


class UnknownProfile(UploadRejected):
    def __init__(self, name: str, parameter: str) -> None:
        super().__init__(
            "unknown_profile",
            f"profile {name!r} does not exist: create the SSM parameter {parameter} (a JSON object of settings), "
            "or upload directly under the incoming prefix",
        )


# Room for the names Claid gives the files in an output folder (undocumented; ours are `variant-N.<ext>`).
CLAID_FILE_NAME_ALLOWANCE = 100


def check_key_lengths(upload: Upload, config: ProcessorConfig) -> None:
    """Every key the pipeline will write for this photo fits S3's 1,024 bytes: its published images, and its
    variants under the generated prefix. Refused before anything is reserved or charged."""
    published = longest_published_key(upload.key, config.incoming_prefix, config.published_prefix)
    generated = output_prefix_for(config.generated_prefix, upload.key, "0" * 32) + "x" * CLAID_FILE_NAME_ALLOWANCE
    for what, key in (("published images", published), ("variants", generated)):
        size = len(key.encode())
        if size > S3_MAX_KEY_BYTES:
            raise UploadRejected(
                "key_too_long",
                f"{upload.file_name}: its {what} would have keys of up to {size:,} bytes, and S3 allows "
                f"{S3_MAX_KEY_BYTES:,}: shorten the photo's path by {size - S3_MAX_KEY_BYTES:,} bytes",
            )


def default_settings(config: ProcessorConfig) -> dict[str, Any]:
    return {
        "prompt": config.default_prompt,
        "negative_prompt": config.default_negative_prompt,
        "number_of_images": config.default_number_of_images,
        "output_format": config.default_output_format,
        "aspect_ratio": config.default_aspect_ratio,
        "model": config.default_model,
        "publish": config.default_publish,
        "renditions": config.default_renditions,
    }


def source_of(upload: Upload) -> SourceObject:
    return SourceObject(
        bucket=upload.bucket, key=upload.key, version_id=upload.version_id, etag=upload.etag, sequencer=upload.sequencer
    )


def rejection(upload: Upload, problem: UploadRejected, *, profile: str | None = None) -> GenerationDetail:
    return GenerationDetail(
        status="rejected",
        job_id=rejection_id(upload, problem.reason),
        source=source_of(upload),
        profile=profile,
        credits=Credits(month=current_month()),
        problem=Problem(code=problem.reason, message=problem.message),
    )


@dataclass
class Processor(SendsAlerts):
    config: ProcessorConfig
    s3: S3Client
    events: EventBridgeClient
    reservations: Reservations
    load_profile: ProfileLoader
    claid: Callable[[], ClaidClient]  # built on first use: the API key is read from Secrets Manager then
    guard: Guard

    def __post_init__(self) -> None:
        self.generate_once = self.guard(self.generate)

    def plan(self, upload: Upload) -> Job | GenerationDetail:
        """Check the upload and resolve its settings. Returns the job, or the rejection to publish.
        Raises UploadRejected('outside_incoming_prefix') for keys that are not work at all."""
        cfg = self.config
        check_key(upload.key, cfg.incoming_prefix)
        profile = None
        try:
            check_key_lengths(upload, cfg)
            facts = inspect_upload(self.s3, upload, max_bytes=cfg.max_upload_bytes)
            check_metadata(facts.metadata)
            profile = facts.metadata.get("backdrop-profile") or profile_from_key(upload.key, cfg.incoming_prefix)
            profile_values = None
            if profile is not None:
                check_profile_name(profile)
                profile_values = self.load_profile(profile)
                if profile_values is None:
                    raise UnknownProfile(profile, cfg.profiles_parameter_path + profile)
            try:
                settings, notes = resolve(
                    default_settings(cfg),
                    profile_values,
                    metadata_to_values(facts.metadata),
                    profile_name=profile,
                )
            except SettingsError as exc:
                raise UploadRejected("bad_settings", str(exc)) from None
        except UploadRejected as problem:
            return rejection(upload, problem, profile=profile)
        return plan_job(
            upload,
            version_id=facts.version_id,
            etag=facts.etag,
            last_modified=facts.last_modified,
            profile=profile,
            settings=settings,
            generated_prefix=cfg.generated_prefix,
            notes=tuple(notes),
        )

    def _input_url(self, job: Job) -> tuple[str, InputKind]:
        """Claid reads exactly the bytes that were checked: a presigned GET pinned to the version. A storage://
        URI cannot name a version, so uploads never go as one; the connector serves Claid's output only
        (docs/decisions.md 34). Without versioning (never this stack's bucket) there is nothing to pin."""
        params = {"Bucket": job.bucket, "Key": job.key}
        if job.version_id:
            params["VersionId"] = job.version_id
        url = self.s3.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.config.presigned_url_ttl_seconds
        )
        return url, "presigned_url"

    def _destination(self, job: Job) -> str | None:
        if not self.config.claid_storage_name:
            return None  # Claid's temporary bucket; the recorder copies the tmp_urls into job.output_prefix
        uri = storage_uri(self.config.claid_storage_name, self.config.claid_storage_prefix, job.output_prefix)
        if uri is None:
            raise ValueError(
                f"generated prefix {job.output_prefix!r} is outside the Claid connector's prefix "
                f"{self.config.claid_storage_prefix!r}: fix CLAID_STORAGE_PREFIX or GENERATED_PREFIX"
            )
        return uri

    def generate(self, job: Job, deadline: Deadline) -> GenerationDetail:
        """Reserve credits, call Claid once, and describe the outcome. Raises ClaidTransientError or
        ClaidOutOfCredits (reservation released) when the job should go back to the queue."""
        settings = job.settings
        worst = credits_for(settings.number_of_images, settings.autoprompt)
        base: _JobFields = {
            "job_id": job.job_id,
            "source": SourceObject(
                bucket=job.bucket,
                key=job.key,
                version_id=job.version_id,
                etag=job.etag,
                sequencer=job.sequencer,
                last_modified=job.last_modified,
            ),
            "profile": job.profile,
            "settings": settings.model_dump(mode="json", exclude_none=True),
            "notes": list(job.notes),
            "output_prefix": job.output_prefix,
            "autoprompt": settings.autoprompt,
        }
        # Everything that can fail for want of configuration happens before credits are held, and is said: a
        # job recorded failed with the reason, not a message retried into the DLQ in silence. A fixed stack
        # processes the photo when it is sent again.
        try:
            image_url, input_kind = self._input_url(job)
            destination = self._destination(job)
            request = build_scene_request(settings, image_url, destination)
        except ValueError as exc:  # pydantic's ValidationError included
            problem = Problem(code="bad_configuration", message=f"no valid Claid request could be built: {exc}")
            raise refused(job, "failed", problem) from None
        reservation = self.reservations.reserve(job.job_id, job.month, worst)
        if reservation.outcome == "reserved":
            measure("CreditsReserved", float(worst))
        if reservation.outcome == "over_budget":
            # Credits a backfill held for this job are given back: it is not running now, and will be sent again.
            self.reservations.release_held(job.job_id)
            budget = self.reservations.budget
            self._budget_exhausted(job.month, "uploads")
            raise refused(
                job,
                "rejected",
                Problem(
                    code="budget_exhausted",
                    message=f"this job needs up to {worst} credits and the monthly budget of {budget} "
                    f"credits for {job.month} is spent or reserved; it is processed when sent again once the "
                    "budget allows (backdrop backfill)",
                ),
            )
        # What the job holds may be a backfill's reservation: in its month, and at least `worst`.
        held = reservation.credits
        job = job.model_copy(update={"month": reservation.month})
        self._budget_committed(reservation, job.month)
        reserved = Credits(month=job.month, reserved=float(held))
        try:
            result = self.claid().create_scene(request, deadline)
        except (ClaidTransientError, ClaidOutOfCredits) as exc:
            # The job goes back to the queue: give the credits back until it is tried again.
            self._release(job, held)
            if isinstance(exc, ClaidOutOfCredits):
                self._alert(
                    "claid_out_of_credits",
                    job.month,
                    "Claid says the account has no API calls left: jobs wait in the queue until credits are added",
                    once_per=datetime.now(UTC).strftime("%Y-%m-%dT%H"),  # at most hourly while it lasts
                    claid_request_id=exc.request_id,
                )
            raise
        except ClaidAuthError as exc:
            # Claid refused our key, and charged nothing: a new key lifts this, so it is no verdict on the photo.
            self._release(job, held)
            raise refused(job, "failed", _claid_problem(exc), claid=_claid_call(exc, input_kind, destination)) from None
        except ClaidError as exc:
            return GenerationDetail(
                status="failed",
                credits=reserved,
                claid=_claid_call(exc, input_kind, destination),
                problem=_claid_problem(exc),
                **base,
            )
        except Exception:
            # Anything else (the API key could not be read, ...): retried later, holding nothing meanwhile.
            self._release(job, held)
            raise
        return self._succeeded(job, result, reserved, input_kind, destination, base)

    def _release(self, job: Job, credits: Decimal) -> None:
        if self.reservations.release(job.job_id, job.month, credits):
            measure("CreditsReleased", float(credits))

    def _succeeded(
        self,
        job: Job,
        result: SceneResult,
        reserved: Credits,
        input_kind: InputKind,
        destination: str | None,
        base: _JobFields,
    ) -> GenerationDetail:
        outputs = []
        for image in result.response.data.output:
            fmt = (image.ext or image.format or job.settings.output_format).lower()
            if image.object_key:
                outputs.append(
                    OutputObject(
                        format=fmt,
                        width=image.width,
                        height=image.height,
                        bucket=image.object_bucket or job.bucket,
                        key=image.object_key,
                    )
                )
            else:
                outputs.append(OutputObject(format=fmt, width=image.width, height=image.height, tmp_url=image.tmp_url))
        used = credits_for(len(outputs), job.settings.autoprompt)
        return GenerationDetail(
            status="succeeded",
            outputs=outputs,
            images=len(outputs),
            credits=Credits(month=job.month, reserved=reserved.reserved, used=float(used)),
            claid=ClaidCall(
                request_id=result.request_id,
                attempts=result.attempts,
                retried=result.retried,
                input=input_kind,
                destination=destination,
            ),
            **base,
        )

    # --- one upload, start to end ----------------------------------------------------------------------
    def handle(self, upload: Upload, deadline: Deadline) -> GenerationDetail | HandBack:
        """Plan, call Claid once (`generate`, guarded), settle an unanswered call, publish the outcome.
        Raises UploadRejected('outside_incoming_prefix') for keys that are not work at all."""
        try:
            planned = self.plan(upload)
        except UploadRejected as exc:
            measure("KeysIgnored", dimension=("Reason", exc.reason))
            raise
        if isinstance(planned, GenerationDetail):
            outcome: GenerationDetail | HandBack = planned
            self._release_backfill_hold(upload)
        else:
            outcome = self._run(planned, deadline)
        if isinstance(outcome, GenerationDetail):
            put_on_bus(self.events, self.config.event_bus_name, outcome.detail_type, outcome)
            measure("Uploads", dimension=("Status", outcome.status))
            if outcome.status == "rejected" and outcome.problem is not None:
                measure("UploadsRejected", dimension=("Reason", outcome.problem.code))
        else:
            measure("HandBacks", dimension=("Reason", outcome.reason))
        return outcome

    def _release_backfill_hold(self, upload: Upload) -> None:
        """A backfill holds credits for each job it queues; a version refused before it became a job (deleted since,
        its profile gone) gives them back. The version is the one the backfill's message names."""
        version = upload.version_id or upload.etag
        if version:
            self.reservations.release_held(version_job_id(upload.bucket, upload.key, version))

    def _run(self, job: Job, deadline: Deadline) -> GenerationDetail | HandBack:
        budget = self.config.claid_call_budget_seconds
        if deadline.left() < budget:
            # Checked before the idempotency lock and the credits: a job handed back here costs nothing.
            return HandBack(
                1.0, "claid_call_not_started", f"{deadline.left():.0f}s left, a call may take {budget:.0f}s", job.job_id
            )
        try:
            detail = self.generate_once(job, deadline)
            if _refusal_kept_as_outcome(job, detail):
                self.generate_once.forget(job)  # kept by the idempotency layer before refusals were lifted
                detail = self.generate_once(job, deadline)
        except Refused as refusal:
            return refusal.detail
        except InProgressElsewhere:
            return HandBack(
                budget, "in_progress_elsewhere", "another instance is calling Claid for this job", job.job_id
            )
        except (ClaidTransientError, ClaidOutOfCredits) as exc:
            if isinstance(exc, ClaidOutOfCredits):
                # Back after the queue's long visibility timeout, until someone adds credits (or the DLQ keeps it).
                return HandBack(None, exc.reason, str(exc), job.job_id)
            return HandBack(max(1.0, exc.retry_after or 1.0), exc.reason, str(exc), job.job_id)
        return self.settle(job, detail)

    def settle(self, job: Job, detail: GenerationDetail, now: datetime | None = None) -> GenerationDetail | HandBack:
        """A call that got no answer may still have been generated and charged. In connected-storage mode its
        output folder is deterministic: what Claid wrote there is the outcome. In temporary-bucket mode nothing
        can be checked: the credits it may have cost are recorded as at risk."""
        problem = detail.problem
        if detail.status != "failed" or problem is None or problem.code != ClaidOutcomeUnknown.reason:
            return detail
        if detail.claid is None or detail.claid.destination is None:
            return detail.model_copy(
                update={"credits": detail.credits.model_copy(update={"at_risk": detail.credits.reserved})}
            )
        found = self._written_outputs(job)
        age = ((now or datetime.now(UTC)) - datetime.fromisoformat(detail.occurred_at)).total_seconds()
        wait = self.config.unknown_outcome_settle_seconds - age
        complete = len(found) >= job.settings.number_of_images
        if complete or (found and wait <= 0):
            used = credits_for(len(found), job.settings.autoprompt)
            return detail.model_copy(
                update={
                    "status": "succeeded",
                    "outputs": found,
                    "images": len(found),
                    "credits": detail.credits.model_copy(update={"used": float(used)}),
                    "claid": detail.claid.model_copy(update={"reconciled": True}),
                    "problem": None,
                }
            )
        if wait > 0:
            return HandBack(
                max(1.0, wait),
                "claid_outcome_unsettled",
                f"Claid did not answer; {len(found)} of {job.settings.number_of_images} image(s) in "
                f"{job.output_prefix} so far; settled in {wait:.0f}s at the latest",
                job.job_id,
            )
        return detail.model_copy(
            update={
                "claid": detail.claid.model_copy(update={"reconciled": True}),
                "problem": problem.model_copy(
                    update={
                        "message": f"{problem.message}; no image appeared in {job.output_prefix} within "
                        f"{self.config.unknown_outcome_settle_seconds}s, so Claid made (and charged) nothing"
                    }
                ),
            }
        )

    def _written_outputs(self, job: Job) -> list[OutputObject]:
        found = []
        # Only the files directly in the job's folder: its renditions, made later, live in a subfolder.
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=job.bucket, Prefix=job.output_prefix, Delimiter="/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                suffix = PurePosixPath(obj["Key"]).suffix.lstrip(".").lower()
                found.append(
                    OutputObject(format=suffix or job.settings.output_format, bucket=job.bucket, key=obj["Key"])
                )
        return sorted(found, key=lambda o: o.key or "")


def _refusal_kept_as_outcome(job: Job, detail: GenerationDetail) -> bool:
    """A liftable refusal under the job's own id: what the idempotency layer kept before this release (a refusal
    now leaves the guarded step as `Refused` and is never kept)."""
    return detail.job_id == job.job_id and not detail.final


def _claid_problem(exc: ClaidError) -> Problem:
    """Claid's answer, kept as Claid sent it (docs/decisions.md 13)."""
    return Problem(
        code=exc.reason,
        message=exc.message,
        claid_status=exc.status,
        claid_error_code=exc.error_code,
        claid_error_type=exc.error_type,
        claid_request_id=exc.request_id,
        claid_error_details=exc.details or None,
    )


def _claid_call(exc: ClaidError, input_kind: InputKind, destination: str | None) -> ClaidCall:
    return ClaidCall(request_id=exc.request_id, attempts=exc.attempts, input=input_kind, destination=destination)


def profile_loader(ssm_provider: Any, path: str) -> ProfileLoader:
    """Profiles are JSON objects in SSM Parameter Store under `path`; the provider caches them."""

    def load(name: str) -> Mapping[str, Any] | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        check_profile_name(name)
        try:
            raw = ssm_provider.get(path + name, max_age=300)
        except GetParameterError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "ParameterNotFound":
                return None
            if "ParameterNotFound" in str(exc):
                return None
            raise
        try:
            values = json.loads(str(raw))
        except ValueError:
            raise UploadRejected("bad_profile", f"profile {name!r} ({path + name}) is not valid JSON") from None
        check_profile_document(name, str(raw), values)
        return dict(values)

    return load
