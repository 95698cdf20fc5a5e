"""The renditions function's logic: the renditions a published selection asks for, each made by one Claid image
edit (reserved, called once, settled from its destination when the answer is lost, counted once), then put at
their stable keys as the photo's selection record says, and told on the bus.

One edit is one file under the job's generated folder (`PlannedRendition.from_key`), identified by `edit_id`: a
second selection of the same variant at the same size finds it made and pays nothing. Claid writes that file
through the connector (which may write only under the generated prefix); publishing it is a server-side copy made
by `Publisher.converge`, the same code that publishes the images, so a rendition reaches its stable key only while
the photo's record still asks for it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import httpx
from botocore.exceptions import ClientError
from pydantic import Field

from backdrop.alerts import SendsAlerts
from backdrop.claid.client import ClaidClient, Deadline, EditResult
from backdrop.claid.errors import (
    ClaidAuthError,
    ClaidError,
    ClaidOutcomeUnknown,
    ClaidOutOfCredits,
    ClaidTransientError,
)
from backdrop.claid.request import build_edit_request
from backdrop.config import RenditionsConfig
from backdrop.events import (
    SCHEMA_VERSION,
    ClaidCall,
    Credits,
    EventDetail,
    InputKind,
    Problem,
    SourceObject,
    Timestamp,
    put_on_bus,
)
from backdrop.handback import HandBack
from backdrop.jobs import current_month, storage_uri
from backdrop.measures import measure, side_by_side
from backdrop.once import Guarded, InProgressElsewhere, Step
from backdrop.publishing import Publisher, VariantsPublishedDetail, renditions_of
from backdrop.recording import keep_temporary_image
from backdrop.renditions import PlannedRendition, RenditionSpec
from backdrop.store.ledger import CreditLedger, EditCharge
from backdrop.store.reservations import Reservations

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

RENDITIONS_PUBLISHED = "Renditions Published"
RENDITIONS_FAILED = "Renditions Failed"
# HeadObject has no body, so its error code is the status: 404, or 403 for a missing key without s3:ListBucket.
_ABSENT = {"403", "404", "NoSuchKey"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Detail(EventDetail):
    """Open to fields added within 1.x, as every event detail (Renditions Published and Failed are events)."""


class Edit(_Detail):
    """One rendition file to make: what the guarded Claid call takes (its idempotency key is `edit_id`)."""

    edit_id: str
    job_id: str
    version: int  # the selection that asks for it (not part of its identity: a later one may find it made)
    bucket: str
    photo_key: str  # the uploaded photo (for the record)
    profile: str | None
    month: str  # the ledger month its credits count against
    spec: str
    width: int
    height: int
    format: str
    fit: str
    upscale: bool
    credits: float  # its price: the stack's credits per edit, or per upscaled edit
    input_key: str  # the variant, under the generated prefix
    output_key: str  # where Claid writes it, under the job's generated folder

    @property
    def rendition(self) -> RenditionSpec:
        return RenditionSpec.model_validate(
            {"width": self.width, "height": self.height, "format": self.format, "fit": self.fit}
        )


class EditOutcome(_Detail):
    """What came of one edit: made (by this attempt, or found made), or failed with Claid's answer."""

    edit_id: str
    attempt_id: str | None = None  # None: nothing was sent (found made, or refused before the call)
    status: Literal["succeeded", "failed"]
    reused: bool = False  # the file was made before (an earlier selection of the same variant and size)
    for_version: int | None = None  # the selection whose message made this attempt
    output_key: str
    format: str
    width: int | None = None  # from Claid's answer (None when it was lost, or the file was found made)
    height: int | None = None
    tmp_url: str | None = None  # temporary-bucket mode: copied into output_key by this function
    credits: Credits
    claid: ClaidCall | None = None
    problem: Problem | None = None
    occurred_at: str = Field(default_factory=_now)

    @property
    def recorded(self) -> bool:
        """Whether this outcome is an attempt the ledger records (a Claid call was made)."""
        return self.attempt_id is not None


class _Place(TypedDict):
    """Which rendition a Renditions Published or Failed entry is about, and its stable key."""

    position: int
    variant: int
    spec: str
    bucket: str
    key: str


class RenditionReady(_Detail):
    position: int  # of the published image it is made from (1 = the main image)
    variant: int
    spec: str  # "2048 webp", "2000x2500 jpeg canvas"
    bucket: str
    key: str  # the stable key
    format: str
    fit: str
    width: int | None  # as Claid made it; null when its answer was lost and the file was found in storage
    height: int | None
    upscaled: bool
    credits: float  # what this selection paid for it: 0 when it was made before
    claid_request_id: str | None = None


class RenditionProblem(_Detail):
    position: int
    variant: int
    spec: str
    bucket: str
    key: str  # the stable key it would have had; the published image stays as it is
    problem: Problem


class RenditionsDetail(_Detail):
    """`Renditions Published` (every rendition is at its key) or `Renditions Failed` (at least one is not)."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    job_id: str
    source: SourceObject
    profile: str | None = None
    version: int  # the photo's selection version these renditions belong to
    renditions: list[RenditionReady] = Field(default_factory=list)
    failed: list[RenditionProblem] = Field(default_factory=list)
    credits: Credits  # what this selection's edits cost (`used`), in the month they count against
    occurred_at: Timestamp = Field(default_factory=_now)

    @property
    def detail_type(self) -> str:
        return RENDITIONS_FAILED if self.failed else RENDITIONS_PUBLISHED


class EditRefused(Exception):
    """The edit was refused for a reason a change lifts (the budget, or Claid refusing our key): the edit's outcome
    for this selection, not kept as the edit's verdict by the idempotency layer."""

    def __init__(self, outcome: EditOutcome) -> None:
        super().__init__(outcome.problem.message if outcome.problem else "refused")
        self.outcome = outcome


@dataclass
class Work:
    """One published selection's renditions: the event that asked, what the record plans, the edits to make."""

    detail: VariantsPublishedDetail
    planned: list[PlannedRendition]
    edits: dict[str, Edit] = field(default_factory=dict)


# Wraps the step that spends credits so that it runs at most once per edit: once.Once in Lambda (Powertools
# idempotency on DynamoDB), once.RunsEveryTime in unit tests.
Guard = Callable[[Step[Edit, EditOutcome]], Guarded[Edit, EditOutcome]]


class _EditFields(TypedDict):
    """What an edit's outcome says about the edit, whatever the outcome."""

    edit_id: str
    output_key: str
    format: str
    for_version: int


class _Route(TypedDict):
    """How an edit's call reaches Claid, known before it is made: the ClaidCall fields that say so."""

    input: InputKind
    destination: str | None


@dataclass
class Editor(SendsAlerts):
    config: RenditionsConfig
    s3: S3Client
    events: EventBridgeClient
    reservations: Reservations  # credits held for each edit attempt
    ledger: CreditLedger  # edit attempts and their credits
    publisher: Publisher
    claid: Callable[[], ClaidClient]  # built on first use: the API key is read from Secrets Manager then
    http: httpx.Client  # temporary-bucket mode: the tmp_url downloads
    guard: Guard

    def __post_init__(self) -> None:
        self.attempt_once = self.guard(self.attempt)

    # --- what a published selection asks for ------------------------------------------------------------------
    def plan(self, detail: dict[str, Any]) -> Work | None:
        """The edits for a `Variants Published` detail, from the photo's record; None when there is nothing to do
        (no renditions, or the selection was replaced since: the newer one's own event brings its renditions).
        Raises pydantic's ValidationError for a detail that is not one (the message ends in the DLQ)."""
        published = VariantsPublishedDetail.model_validate(detail)
        current = self.publisher.current(published.source.bucket, published.source.key)
        if current is None or current.version != published.version:
            measure("RenditionsSuperseded")
            return None
        planned = renditions_of(current)
        if not planned:
            return None
        month = current_month()
        cfg = self.config
        work = Work(published, planned)
        for rendition in planned:
            price = cfg.rendition_upscale_credits if rendition.upscale else cfg.rendition_edit_credits
            work.edits[rendition.edit_id] = Edit(
                edit_id=rendition.edit_id,
                job_id=published.job_id,
                version=published.version,
                bucket=rendition.bucket,
                photo_key=published.source.key,
                profile=published.profile,
                month=month,
                spec=rendition.spec,
                width=rendition.width,
                height=rendition.height,
                format=rendition.format,
                fit=rendition.fit,
                upscale=rendition.upscale,
                credits=price,
                input_key=rendition.source_key,
                output_key=rendition.from_key,
            )
        return work

    # --- one edit ---------------------------------------------------------------------------------------------
    def make(self, edit: Edit, deadline: Deadline) -> EditOutcome | HandBack:
        """Make one rendition file once (`attempt`, guarded), settle an unanswered call, count it, and keep a
        temporary-bucket image. A HandBack when it must be tried again later."""
        budget = self.config.claid_call_budget_seconds
        if deadline.left() < budget:
            # Checked before the idempotency lock and the credits: handing back here costs nothing.
            return HandBack(
                1.0, "claid_call_not_started", f"{deadline.left():.0f}s left, a call may take {budget:.0f}s"
            )
        try:
            outcome = self.attempt_once(edit, deadline)
        except InProgressElsewhere:
            return HandBack(budget, "in_progress_elsewhere", f"another instance is making {edit.output_key}")
        except EditRefused as refused:
            return refused.outcome
        except ClaidOutOfCredits as exc:
            # Back after the queue's long visibility timeout, until someone adds credits (or the DLQ keeps it).
            return HandBack(None, exc.reason, str(exc))
        except ClaidTransientError as exc:
            return HandBack(max(1.0, exc.retry_after or 1.0), exc.reason, str(exc))
        settled = self.settle(edit, outcome)
        if isinstance(settled, HandBack):
            return settled
        if settled.recorded and self._record(edit, settled):
            if settled.status == "succeeded":
                measure("EditsMade")
            else:
                measure("EditsFailed")
            measure("EditCreditsUsed", settled.credits.used)
        if settled.output_key != edit.output_key and not self._exists(edit.bucket, edit.output_key):
            # Claid wrote the file under another name than the one it was given: moved (a server-side copy) to
            # the name the record publishes from.
            self.s3.copy_object(
                Bucket=edit.bucket, Key=edit.output_key, CopySource={"Bucket": edit.bucket, "Key": settled.output_key}
            )
        if settled.status == "succeeded" and settled.tmp_url and not self._exists(edit.bucket, edit.output_key):
            # Recorded first: Claid charged for it whether or not the copy works (a failed copy is retried).
            cfg = self.config
            keep_temporary_image(
                self.http,
                self.s3,
                settled.tmp_url,
                edit.bucket,
                edit.output_key,
                edit.format,
                hosts=cfg.claid_download_hosts,
                allow_insecure=cfg.allow_insecure_downloads,
                max_bytes=cfg.max_variant_bytes,
            )
        return settled

    def make_all(self, work: Work, deadline: Deadline, workers: Executor) -> dict[str, EditOutcome | HandBack]:
        """A selection's edits, made side by side (each waits on Claid in a worker thread), by edit id."""
        edits = list(work.edits.values())
        made = side_by_side(workers, [partial(self.make, edit, deadline) for edit in edits])
        return {edit.edit_id: outcome for edit, outcome in zip(edits, made, strict=True)}

    def attempt(self, edit: Edit, deadline: Deadline) -> EditOutcome:
        """The guarded step: reserve, call Claid once, describe the outcome. Raises ClaidTransientError or
        ClaidOutOfCredits (reservation released) when the edit should be tried again later, and EditRefused
        (nothing held) when the budget cannot cover it."""
        base: _EditFields = {
            "edit_id": edit.edit_id,
            "output_key": edit.output_key,
            "format": edit.format,
            "for_version": edit.version,
        }
        if self._exists(edit.bucket, edit.output_key):
            return EditOutcome(status="succeeded", reused=True, credits=Credits(month=edit.month), **base)
        if not self._exists(edit.bucket, edit.input_key):
            return EditOutcome(
                status="failed",
                credits=Credits(month=edit.month),
                problem=Problem(
                    code="variant_missing",
                    message=f"{edit.input_key} is no longer in the bucket (expired from the generated prefix?): "
                    "nothing to make the rendition from",
                ),
                **base,
            )
        # Everything that can fail for want of configuration happens before credits are held.
        input_uri, input_kind = self._input(edit)
        destination = self._destination(edit)
        request = build_edit_request(edit.rendition, input_uri, destination, upscale=edit.upscale)
        attempt_id = uuid.uuid4().hex
        price = Decimal(str(edit.credits))
        reservation = self.reservations.reserve(attempt_id, edit.month, price)
        budget = self.reservations.budget
        if reservation.outcome == "over_budget":
            self._budget_exhausted(edit.month, "renditions")
            raise EditRefused(
                EditOutcome(
                    status="failed",
                    credits=Credits(month=edit.month),
                    problem=Problem(
                        code="budget_exhausted",
                        message=f"a {edit.spec} rendition needs {price} credits and the monthly budget of {budget} "
                        f"credits for {edit.month} is spent or reserved",
                    ),
                    **base,
                )
            )
        measure("CreditsReserved", float(price))
        self._budget_committed(reservation, edit.month)
        reserved = Credits(month=edit.month, reserved=float(price))
        call: _Route = {"input": input_kind, "destination": destination}
        try:
            result = self.claid().edit_image(request, deadline)
        except (ClaidTransientError, ClaidOutOfCredits) as exc:
            self._release(attempt_id, edit.month, price)
            if isinstance(exc, ClaidOutOfCredits):
                self._alert(
                    "claid_out_of_credits",
                    edit.month,
                    "Claid says the account has no API calls left: renditions wait in their queue until credits are "
                    "added",
                    once_per=datetime.now(UTC).strftime("%Y-%m-%dT%H"),
                    claid_request_id=exc.request_id,
                )
            raise
        except ClaidError as exc:
            failed = EditOutcome(
                attempt_id=attempt_id,
                status="failed",
                credits=reserved,
                claid=ClaidCall(request_id=exc.request_id, attempts=exc.attempts, **call),
                problem=Problem(
                    code=exc.reason,
                    message=exc.message,
                    claid_status=exc.status,
                    claid_error_code=exc.error_code,
                    claid_error_type=exc.error_type,
                    claid_request_id=exc.request_id,
                    claid_error_details=exc.details or None,
                ),
                **base,
            )
            if isinstance(exc, ClaidAuthError):
                # Claid refused our key (401/403) and charged nothing: a key with the image_editing scope lifts it,
                # so it is no verdict on the edit (not kept as its outcome; the next selection tries again).
                self._release(attempt_id, edit.month, price)
                raise EditRefused(
                    failed.model_copy(update={"attempt_id": None, "credits": Credits(month=edit.month)})
                ) from None
            return failed
        except Exception:
            # Anything else (the API key could not be read, ...): tried again later, holding nothing meanwhile.
            self._release(attempt_id, edit.month, price)
            raise
        return self._made(edit, attempt_id, result, reserved, call, base)

    def _made(
        self,
        edit: Edit,
        attempt_id: str,
        result: EditResult,
        reserved: Credits,
        call: _Route,
        base: _EditFields,
    ) -> EditOutcome:
        image = result.response.data.output
        if image.object_key:
            base = {**base, "output_key": image.object_key}  # where it landed, as Claid says
        return EditOutcome(
            attempt_id=attempt_id,
            status="succeeded",
            width=image.width,
            height=image.height,
            tmp_url=None if image.object_key else image.tmp_url,
            credits=reserved.model_copy(update={"used": reserved.reserved}),
            claid=ClaidCall(request_id=result.request_id, attempts=result.attempts, retried=result.retried, **call),
            **base,
        )

    def settle(self, edit: Edit, outcome: EditOutcome, now: datetime | None = None) -> EditOutcome | HandBack:
        """An edit that got no answer may still have been made and charged. Connected storage: its file name is
        known, so its presence is the outcome. Temporary bucket: nothing can be checked; its credits are at risk."""
        problem = outcome.problem
        if outcome.status != "failed" or problem is None or problem.code != ClaidOutcomeUnknown.reason:
            return outcome
        claid = outcome.claid or ClaidCall()
        if claid.destination is None:
            return outcome.model_copy(
                update={"credits": outcome.credits.model_copy(update={"at_risk": outcome.credits.reserved})}
            )
        if self._exists(edit.bucket, edit.output_key):
            return outcome.model_copy(
                update={
                    "status": "succeeded",
                    "credits": outcome.credits.model_copy(update={"used": outcome.credits.reserved}),
                    "claid": claid.model_copy(update={"reconciled": True}),
                    "problem": None,
                }
            )
        age = ((now or datetime.now(UTC)) - datetime.fromisoformat(outcome.occurred_at)).total_seconds()
        wait = self.config.unknown_outcome_settle_seconds - age
        if wait > 0:
            return HandBack(
                max(1.0, wait),
                "claid_outcome_unsettled",
                f"Claid did not answer; {edit.output_key} is not there yet; settled in {wait:.0f}s at the latest",
            )
        return outcome.model_copy(
            update={
                "claid": claid.model_copy(update={"reconciled": True}),
                "problem": problem.model_copy(
                    update={
                        "message": f"{problem.message}; {edit.output_key} did not appear within "
                        f"{self.config.unknown_outcome_settle_seconds}s, so Claid made (and charged) nothing"
                    }
                ),
            }
        )

    # --- the selection's renditions, published and told ---------------------------------------------------------
    def publish_ready(self, work: Work) -> None:
        """Put the renditions made so far at their keys (the rest follow when they are made)."""
        self.publisher.converge(work.detail.source.bucket, work.detail.source.key, images=False)

    def finish(self, work: Work, outcomes: dict[str, EditOutcome]) -> RenditionsDetail | None:
        """Every edit has its outcome: make the published objects match the record, and tell the bus. None when
        the selection was replaced meanwhile (the newer one tells its own)."""
        source = work.detail.source
        self.publisher.converge(source.bucket, source.key, images=False)
        current = self.publisher.current(source.bucket, source.key)
        if current is None or current.version != work.detail.version:
            measure("RenditionsSuperseded")
            return None
        ready, failed = [], []
        for rendition in work.planned:
            outcome = outcomes[rendition.edit_id]
            where: _Place = {
                "position": rendition.position,
                "variant": rendition.variant,
                "spec": rendition.spec,
                "bucket": rendition.bucket,
                "key": rendition.key,
            }
            # An outcome kept from another selection's message (the same variant and size) cost this one nothing.
            paid = outcome.credits.used if outcome.for_version == work.detail.version else 0.0
            if outcome.status == "succeeded":
                ready.append(
                    RenditionReady(
                        **where,
                        format=rendition.format,
                        fit=rendition.fit,
                        width=outcome.width,
                        height=outcome.height,
                        upscaled=rendition.upscale,
                        credits=paid,
                        claid_request_id=outcome.claid.request_id if outcome.claid else None,
                    )
                )
            else:
                assert outcome.problem is not None
                failed.append(RenditionProblem(**where, problem=outcome.problem))
        mine = [o for o in outcomes.values() if o.for_version == work.detail.version]
        months = {o.credits.month for o in mine}
        detail = RenditionsDetail(
            job_id=work.detail.job_id,
            source=source,
            profile=work.detail.profile,
            version=work.detail.version,
            renditions=ready,
            failed=failed,
            credits=Credits(
                month=min(months) if months else current_month(),
                used=float(sum(Decimal(str(o.credits.used)) for o in mine)),
                at_risk=float(sum(Decimal(str(o.credits.at_risk)) for o in mine)),
            ),
        )
        put_on_bus(self.events, self.config.event_bus_name, detail.detail_type, detail)
        if failed:
            for item in failed:
                measure("RenditionsFailed", dimension=("Reason", item.problem.code))
        measure("RenditionsPublished", float(len(ready)))
        return detail

    # --- helpers ----------------------------------------------------------------------------------------------
    def _input(self, edit: Edit) -> tuple[str, InputKind]:
        """Claid reads the variant it wrote: through the connector when there is one (a storage:// URI stays under
        the prose's 512 characters; a generated key is written once, so no version needs pinning), else through a
        presigned GET (the temporary-bucket mode has no connector)."""
        cfg = self.config
        uri = storage_uri(cfg.claid_storage_name, cfg.claid_storage_prefix, edit.input_key)
        if uri is not None:
            return uri, "storage"
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": edit.bucket, "Key": edit.input_key}, ExpiresIn=cfg.presigned_url_ttl_seconds
        )
        return str(url), "presigned_url"

    def _destination(self, edit: Edit) -> str | None:
        """The file Claid writes (a full name: with a folder, two renditions of one variant would share a name), or
        None for Claid's temporary bucket (no connector, or a key the connector cannot name)."""
        cfg = self.config
        return storage_uri(cfg.claid_storage_name, cfg.claid_storage_prefix, edit.output_key)

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _ABSENT:
                return False
            raise
        return True

    def _release(self, attempt_id: str, month: str, credits: Decimal) -> None:
        if self.reservations.release(attempt_id, month, credits):
            measure("CreditsReleased", float(credits))

    def _record(self, edit: Edit, outcome: EditOutcome) -> bool:
        assert outcome.attempt_id is not None
        fields: dict[str, Any] = {
            "job_id": edit.job_id,
            "source_bucket": edit.bucket,
            "source_key": edit.photo_key,
            "spec": edit.spec,
            "status": outcome.status,
            "detail": outcome.model_dump_json(exclude={"tmp_url"}),
        }
        if outcome.problem is not None:
            fields["reason"] = outcome.problem.code
        if outcome.claid is not None and outcome.claid.request_id:
            fields["claid_request_id"] = outcome.claid.request_id
        return self.ledger.commit_edit(
            EditCharge(
                edit_id=edit.edit_id,
                attempt_id=outcome.attempt_id,
                month=outcome.credits.month,
                profile=edit.profile,
                succeeded=outcome.status == "succeeded",
                used=outcome.credits.used,
                reserved=outcome.credits.reserved,
                at_risk=outcome.credits.at_risk,
                fields=fields,
            )
        )


def detail_of(body: str) -> dict[str, Any]:
    """The `Variants Published` detail an EventBridge rule put on the renditions queue (the event, whole)."""
    event = json.loads(body)
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise ValueError("not an EventBridge event with a detail")
    return event["detail"]
