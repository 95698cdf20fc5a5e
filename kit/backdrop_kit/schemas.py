"""Writes the JSON Schemas of the events on the bus into docs/events/ (a test keeps them in step with the code):
one per detail type, from the same pydantic models the functions validate with, and one of EventBridge's envelope.

The schemas are open (no `additionalProperties: false`): within 1.x a detail only grows, and a consumer that
validates with them must keep working when it does. The storefront's command is the exception, and closed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backdrop.editing import RENDITIONS_FAILED, RENDITIONS_PUBLISHED, RenditionsDetail
from backdrop.events import (
    BUDGET_ALERT,
    GENERATION_MODELS,
    WEBHOOK_PING,
    BudgetAlertDetail,
    Timestamp,
    WebhookPingDetail,
)
from backdrop.publishing import (
    SELECT_VARIANTS,
    SELECTION_REJECTED,
    VARIANTS_PUBLISHED,
    SelectionRejectedDetail,
    SelectVariantsCommand,
    VariantsPublishedDetail,
)
from pydantic import BaseModel, ConfigDict, Field

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE = "EventBridge envelope"


@dataclass(frozen=True)
class EventType:
    """One detail type on the bus: its model, who puts it there, and for whom."""

    detail_type: str
    model: type[BaseModel]
    summary: str
    command: bool = False  # put on the bus by a storefront (its own source), read by backdrop
    webhook: bool = False  # the webhook's rules route it to the storefront's endpoint (when WebhookUrl is set)

    @property
    def mode(self) -> Literal["validation", "serialization"]:
        """What backdrop sends, as serialized; the command as the publisher validates it."""
        return "validation" if self.command else "serialization"


EVENT_TYPES: list[EventType] = [
    EventType(
        "Generation Succeeded",
        GENERATION_MODELS["Generation Succeeded"],
        "Claid made the variants (the processor's outcome, before the recorder kept and counted it)",
    ),
    EventType(
        "Generation Failed",
        GENERATION_MODELS["Generation Failed"],
        "Claid could not make the variants, or no valid request could be built (`problem` says why)",
    ),
    EventType(
        "Generation Rejected",
        GENERATION_MODELS["Generation Rejected"],
        "backdrop refused the upload before calling Claid (`problem` says why; `final: false` when a change of "
        "settings or budget lifts it)",
    ),
    EventType(
        "Generation Recorded",
        GENERATION_MODELS["Generation Recorded"],
        "a generation's outcome is recorded and counted: the final keys of the variants (the storefront's event)",
        webhook=True,
    ),
    EventType(
        VARIANTS_PUBLISHED, VariantsPublishedDetail, "chosen variants are at the photo's stable keys", webhook=True
    ),
    EventType(SELECTION_REJECTED, SelectionRejectedDetail, "a choice of variants changed nothing", webhook=True),
    EventType(
        RENDITIONS_PUBLISHED, RenditionsDetail, "every rendition of a selection is at its stable key", webhook=True
    ),
    EventType(RENDITIONS_FAILED, RenditionsDetail, "some renditions of a selection could not be made", webhook=True),
    EventType(BUDGET_ALERT, BudgetAlertDetail, "the monthly credit budget or Claid's balance needs a look"),
    EventType(WEBHOOK_PING, WebhookPingDetail, "a test event from `backdrop webhook ping`", webhook=True),
    EventType(
        SELECT_VARIANTS,
        SelectVariantsCommand,
        "a storefront chooses the variants to publish (its own source; answered by Variants Published or "
        "Selection Rejected)",
        command=True,
    ),
]


class Envelope(BaseModel):
    """An event as EventBridge delivers it to a rule's target (and POSTs it to the webhook): `detail` is the detail
    type's own schema. A replay keeps `source`, `detail-type`, `detail` and `resources`; EventBridge gives every
    event, replays included, a new `id` and `time`, so deduplicate on the detail, never on `id`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: str = Field(examples=["0"])
    id: str = Field(description="EventBridge's id of this delivery: new for a replayed event")
    detail_type: str = Field(alias="detail-type")
    source: str = Field(description='"backdrop", or the storefront\'s source for a Select Variants command')
    account: str
    time: Timestamp = Field(description="when EventBridge received it: new for a replayed event")
    region: str
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]


def _titled(title: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DRAFT, **schema, "title": title}


def schemas() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for event in EVENT_TYPES:
        # What backdrop sends, as serialized; the command as the publisher validates it.
        source = "your storefront's, never backdrop" if event.command else "backdrop"
        schema = event.model.model_json_schema(mode=event.mode)
        found[event.detail_type] = _titled(f"{event.detail_type} (source: {source}) detail", schema)
    found[ENVELOPE] = _titled(ENVELOPE, Envelope.model_json_schema(mode="serialization", by_alias=True))
    return found


def file_name(name: str) -> str:
    return name.lower().replace(" ", "-") + ".schema.json"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOCS.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (DOCS / file_name(name)).write_text(render(schema))
        print(f"wrote {DOCS / file_name(name)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
