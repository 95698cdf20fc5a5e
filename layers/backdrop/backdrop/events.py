"""Events on the backdrop bus: the versioned detail models (the public integration surface) and publishing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceObject(_Detail):
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    # The version's place in S3's order: the notification's sequencer (ordered per key), and LastModified
    # (ISO 8601, UTC) for versions that reach the processor without a notification (backfill).
    sequencer: str | None = None
    last_modified: str | None = None


class OutputObject(_Detail):
    format: str
    width: int | None = None  # None: found in storage after an unanswered call (Claid's answer carried the size)
    height: int | None = None
    bucket: str | None = None  # set once the image is in our storage
    key: str | None = None
    tmp_url: str | None = None  # Claid's temporary bucket: public for 24 hours, copied by the recorder


class Credits(_Detail):
    month: str
    reserved: float = 0.0
    used: float = 0.0
    # Temporary-bucket mode, call unanswered: Claid may have charged these and nothing can tell.
    at_risk: float = 0.0


class Problem(_Detail):
    code: str  # stable: not_an_image, too_large, empty_file, bad_settings, unknown_profile, budget_exhausted, claid_...
    message: str
    claid_status: int | None = None
    claid_error_code: str | None = None
    claid_error_type: str | None = None  # Claid's open set: auth, validation, general, billing, ...
    claid_request_id: str | None = None
    claid_error_details: dict[str, Any] | None = None


class ClaidCall(_Detail):
    request_id: str | None = None
    attempts: int = 0
    retried: list[str] = Field(default_factory=list)
    input: Literal["storage", "presigned_url"] | None = None
    destination: str | None = None  # storage:// folder, or None for the temporary bucket
    # The call got no answer and the outcome was settled from what Claid wrote to the output folder.
    reconciled: bool = False


class GenerationDetail(_Detail):
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
    occurred_at: str = Field(default_factory=_now)
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


class BudgetAlertDetail(_Detail):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    kind: Literal["budget_threshold", "budget_exhausted", "claid_out_of_credits"]
    month: str
    message: str
    threshold_percent: int | None = None
    committed: float | None = None
    budget: float | None = None
    claid_request_id: str | None = None
    occurred_at: str = Field(default_factory=_now)


class EventPublishError(RuntimeError):
    pass


def publish(events_client: Any, bus_name: str, detail_type: str, detail: BaseModel) -> None:
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
