"""Events on the backdrop bus: the versioned detail models (the public integration surface) and publishing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
