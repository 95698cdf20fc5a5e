"""Events on the backdrop bus: the versioned detail models (the public integration surface) and publishing.

Every detail model derives from `EventDetail`, which ignores fields it does not know: within 1.x a detail only
grows (docs/events.md, "Versioning"), and a consumer built from these models or their JSON Schemas keeps working
when it does. What a consumer must not see new values of is closed where it is declared (`schema_version`, each
detail type's `status`); sets that may grow (a problem code, a Budget Alert kind) are strings whose known values
the schema lists as examples. The one input, the storefront's `Select Variants` command, is closed instead: a field
backdrop does not know would be ignored silently (publishing.SelectVariantsCommand)."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from backdrop.settings import SettingNote

SOURCE = "backdrop"
SCHEMA_VERSION: Literal["1.0"] = "1.0"

Status = Literal["succeeded", "failed", "rejected"]
DETAIL_TYPES: dict[str, str] = {
    "succeeded": "Generation Succeeded",
    "failed": "Generation Failed",
    "rejected": "Generation Rejected",
}
RECORDED = "Generation Recorded"
BUDGET_ALERT = "Budget Alert"
WEBHOOK_PING = "Webhook Ping"  # `backdrop webhook ping`: a test event through the webhook's path
GENERATION_DETAIL_TYPES = frozenset(DETAIL_TYPES.values())

# Refusals that a change of settings or budget can lift (DESIGN invariant 7): not a verdict on the photo. Such an
# outcome is recorded under an id of its own (backdrop.jobs.refusal_id), never under the job's, and is not kept
# by the processor's idempotency layer, so the same object version is processed when it is sent again after the
# change (backfill, redrive, replay) and charged once then. Every other code is a verdict on that version.
LIFTABLE_PROBLEMS = frozenset(
    {
        "budget_exhausted",  # raise MonthlyCreditBudget, or wait for the next month
        "bad_configuration",  # the processor could not build a valid Claid request: fix the stack's parameters
        "claid_auth",  # Claid refused the API key (401/403): put a valid key in the secret
        "unknown_profile",  # create the profile
        "bad_profile",  # fix the profile
        "bad_settings",  # fix the profile or the stack's defaults (a bad value in the object's own metadata needs
        # a new version, which is a new job anyway)
        "too_large",  # raise MaxUploadBytes
        "key_too_long",  # shorter prefixes
    }
)


def is_final(status: str, problem_code: str | None) -> bool:
    """Whether an outcome is a verdict on the object version (see LIFTABLE_PROBLEMS)."""
    return status == "succeeded" or problem_code not in LIFTABLE_PROBLEMS


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class EventDetail(BaseModel):
    """The base of every event detail: open to fields added within 1.x (they are ignored), frozen."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


def open_set(*known: str, description: str) -> WithJsonSchema:
    """The JSON Schema of a value from a set that may grow within 1.x: a string, its known values as examples (the
    model itself may hold a Literal, for what backdrop produces)."""
    return WithJsonSchema({"type": "string", "examples": list(known), "description": description})


# ISO 8601 with a UTC offset, e.g. 2026-11-24T10:15:41.870+00:00.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", json_schema_extra={"examples": ["2026-11"]})]


class SourceObject(EventDetail):
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    # The version's place in S3's order: the notification's sequencer (ordered per key), and LastModified
    # (ISO 8601, UTC) for versions that reach the processor without a notification (backfill).
    sequencer: str | None = None
    last_modified: Timestamp | None = None


class OutputObject(EventDetail):
    format: str
    width: int | None = None  # None: found in storage after an unanswered call (Claid's answer carried the size)
    height: int | None = None
    bucket: str | None = None  # set once the image is in our storage
    key: str | None = None
    tmp_url: str | None = None  # Claid's temporary bucket: public for 24 hours, copied by the recorder


class Credits(EventDetail):
    month: Month
    reserved: float = 0.0
    used: float = 0.0
    # Temporary-bucket mode, call unanswered: Claid may have charged these and nothing can tell.
    at_risk: float = 0.0


PROBLEM_CODES = (
    "not_an_image",
    "empty_file",
    "too_large",
    "bad_metadata",
    "bad_settings",
    "unknown_profile",
    "bad_profile",
    "object_missing",
    "key_too_long",
    "budget_exhausted",
    "bad_configuration",
    "claid_rejected",
    "claid_auth",
    "claid_error",
    "claid_outcome_unknown",
)


class Problem(EventDetail):
    # Stable codes; new ones may come in 1.x. LIFTABLE_PROBLEMS says which a change of settings or budget lifts.
    code: Annotated[str, open_set(*PROBLEM_CODES, description="why: a stable code (docs/events.md); more may come")]
    message: str
    claid_status: int | None = None
    claid_error_code: str | None = None
    claid_error_type: str | None = None  # Claid's open set: auth, validation, general, billing, ...
    claid_request_id: str | None = None
    claid_error_details: dict[str, Any] | None = None


# How Claid was given the input image: through the storage connector, or a presigned GET.
InputKind = Literal["storage", "presigned_url"]


class ClaidCall(EventDetail):
    request_id: str | None = None
    attempts: int = 0
    retried: list[str] = Field(default_factory=list)
    input: InputKind | None = None
    destination: str | None = None  # storage:// folder, or None for the temporary bucket
    # The call got no answer and the outcome was settled from what Claid wrote to the output folder.
    reconciled: bool = False


class GenerationDetail(EventDetail):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    status: Status
    job_id: str
    source: SourceObject
    profile: str | None = None
    settings: dict[str, Any] | None = None
    notes: list[SettingNote] = Field(default_factory=list)  # settings left out, each with its reason
    output_prefix: str | None = None
    outputs: list[OutputObject] = Field(default_factory=list)
    images: int = 0
    autoprompt: bool = False
    credits: Credits
    claid: ClaidCall | None = None
    problem: Problem | None = None
    occurred_at: Timestamp = Field(default_factory=_now)
    # False for a refusal that a change of settings or budget can lift (LIFTABLE_PROBLEMS): the photo is processed
    # when it is sent again, and its job's own outcome comes then, under the job id. True: the version's verdict.
    final: bool = True

    @model_validator(mode="before")
    @classmethod
    def _final_from_the_problem(cls, data: Any) -> Any:
        """A detail written before `final` existed (a dead letter replayed after an upgrade) says it by its code."""
        if isinstance(data, dict) and "final" not in data:
            problem = data.get("problem")
            code = problem.get("code") if isinstance(problem, dict) else getattr(problem, "code", None)
            return {**data, "final": is_final(str(data.get("status", "")), code)}
        return data

    @property
    def detail_type(self) -> str:
        return DETAIL_TYPES[self.status]


AlertKind = Literal["budget_threshold", "budget_exhausted", "claid_out_of_credits"]


class BudgetAlertDetail(EventDetail):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    kind: Annotated[
        AlertKind,
        open_set(*AlertKind.__args__, description="what happened; new kinds may come in 1.x"),
    ]
    month: Month
    message: str
    threshold_percent: int | None = None
    committed: float | None = None
    budget: float | None = None
    claid_request_id: str | None = None
    occurred_at: Timestamp = Field(default_factory=_now)


# One model per generation detail type, for their schemas: the same detail, its status fixed, and a problem on
# every outcome but success. `GenerationDetail` (any of the three) is what `Generation Recorded` carries.
class GenerationSucceededDetail(GenerationDetail):
    status: Literal["succeeded"] = "succeeded"


class GenerationFailedDetail(GenerationDetail):
    status: Literal["failed"] = "failed"
    problem: Problem


class GenerationRejectedDetail(GenerationDetail):
    status: Literal["rejected"] = "rejected"
    problem: Problem


GENERATION_MODELS: dict[str, type[GenerationDetail]] = {
    DETAIL_TYPES["succeeded"]: GenerationSucceededDetail,
    DETAIL_TYPES["failed"]: GenerationFailedDetail,
    DETAIL_TYPES["rejected"]: GenerationRejectedDetail,
    RECORDED: GenerationDetail,
}


class WebhookPingDetail(EventDetail):
    """A test event `backdrop webhook ping` puts on the bus; only the webhook's rule takes it."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    ping_id: str  # identifies this ping at the endpoint
    message: str
    requested_by: str | None = None  # the AWS identity that sent it
    occurred_at: Timestamp = Field(default_factory=_now)


class EventPublishError(RuntimeError):
    pass


def put_on_bus(events_client: Any, bus_name: str, detail_type: str, detail: BaseModel) -> None:
    """PutEvents reports per-entry failures in its answer rather than raising: turn them into an error."""
    answer = events_client.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail.model_dump(mode="json")),
                "EventBusName": bus_name,
            }
        ]
    )
    if answer.get("FailedEntryCount"):
        entry = answer["Entries"][0]
        raise EventPublishError(
            f"PutEvents refused {detail_type}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
