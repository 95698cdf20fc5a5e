"""Writes docs/asyncapi.yaml: the bus and the webhook as an AsyncAPI 3.0 document, generated from the same pydantic
models as the JSON Schemas (backdrop_kit.schemas), so a storefront can generate its types from it. A test
regenerates it and compares, and checks its structure.

What it says: backdrop sends every event on its EventBridge bus (channel `bus`) and receives one command there,
`Select Variants`; EventBridge's API destination sends some of the events to the storefront's webhook (channel
`webhook`), with the `X-Backdrop-Webhook-Secret` header. Each message's payload is the event as a subscriber gets
it: EventBridge's envelope with the detail type's own detail. Every schema lives under components/schemas (pydantic
writes them there, `$ref`s included), and each message carries an example built from its model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from backdrop.editing import RenditionProblem, RenditionReady, RenditionsDetail
from backdrop.events import (
    SCHEMA_VERSION,
    BudgetAlertDetail,
    ClaidCall,
    Credits,
    GenerationDetail,
    OutputObject,
    Problem,
    SourceObject,
    WebhookPingDetail,
)
from backdrop.publishing import (
    PublishedImage,
    Selection,
    SelectionRejectedDetail,
    SelectVariantsCommand,
    VariantsPublishedDetail,
)
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from backdrop_kit.schemas import EVENT_TYPES, Envelope, EventType

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
REF = "#/components/schemas/{model}"
WEBHOOK_HEADER = "X-Backdrop-Webhook-Secret"

_JOB = "9a1f0e4c2b7d4d3f8e6a5b4c3d2e1f00"
_AT = "2026-11-24T10:15:41.870+00:00"
_SOURCE = SourceObject(
    bucket="backdrop-prod-uploads-123456789012-eu-west-1",
    key="incoming/shoes/red shoe.png",
    version_id="3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
    sequencer="0055AED6DCD90281E5",
    last_modified="2026-11-24T10:15:20+00:00",
)


def _generation(status: str) -> GenerationDetail:
    """An example detail of each generation outcome (the models validate it as they would an event)."""
    fields: dict[str, Any] = {
        "status": status,
        "job_id": _JOB,
        "source": _SOURCE,
        "profile": "shoes",
        "settings": {"prompt": "on a marble counter, soft daylight", "number_of_images": 2, "output_format": "jpeg"},
        "output_prefix": f"generated/red shoe/{_JOB}/",
        "credits": Credits(month="2026-11", reserved=4.0),
        "occurred_at": _AT,
    }
    if status == "succeeded":
        fields["images"] = 2
        fields["credits"] = Credits(month="2026-11", reserved=4.0, used=4.0)
        fields["outputs"] = [
            OutputObject(
                format="jpeg", width=1024, height=1024, bucket=_SOURCE.bucket, key=f"generated/red shoe/{_JOB}/{n}.jpeg"
            )
            for n in (1, 2)
        ]
        fields["claid"] = ClaidCall(request_id="b7c1e0a2", attempts=1, input="presigned_url")
    elif status == "failed":
        fields["claid"] = ClaidCall(request_id="b7c1e0a3", attempts=1, input="presigned_url")
        fields["problem"] = Problem(
            code="claid_rejected",
            message="Image is too small",
            claid_status=422,
            claid_error_code="2008",
            claid_error_type="validation",
            claid_request_id="b7c1e0a3",
        )
    else:
        fields["job_id"] = "5f0c3a0d8f6a4e1b9c2d7e8f1a2b3c4d"
        fields["problem"] = Problem(
            code="budget_exhausted",
            message="this job needs up to 4 credits and the monthly budget of 500 credits for 2026-11 is spent or "
            "reserved; it is processed when sent again once the budget allows (backdrop backfill)",
        )
    return GenerationDetail.model_validate(fields)


def examples() -> dict[str, BaseModel]:
    """One example detail per detail type."""
    selection = Selection(
        version=2,
        job_id=_JOB,
        variants=[2],
        chosen_by="command",
        actor="storefront (merchant dashboard)",
        chosen_at=_AT,
    )
    found: dict[str, BaseModel] = {
        "Generation Succeeded": _generation("succeeded"),
        "Generation Failed": _generation("failed"),
        "Generation Rejected": _generation("rejected"),
        "Generation Recorded": _generation("succeeded"),
        "Variants Published": VariantsPublishedDetail(
            job_id=_JOB,
            source=_SOURCE,
            profile="shoes",
            version=2,
            selection=selection,
            published=[
                PublishedImage(
                    variant=2,
                    bucket=_SOURCE.bucket,
                    key="published/shoes/red shoe.png/1.jpeg",
                    from_key=f"generated/red shoe/{_JOB}/2.jpeg",
                    format="jpeg",
                )
            ],
            request_id="shop-7781",
            occurred_at=_AT,
        ),
        "Selection Rejected": SelectionRejectedDetail(
            job_id=_JOB,
            reason="no_such_variant",
            message=f"variant 4 of 2: job {_JOB} has variants 1-2",
            chosen_by="command",
            actor="storefront",
            variants=[4],
            request_id="shop-7782",
            occurred_at=_AT,
        ),
        "Budget Alert": BudgetAlertDetail(
            kind="budget_threshold",
            month="2026-11",
            message="80% of the monthly credit budget is committed",
            threshold_percent=80,
            committed=404.0,
            budget=500.0,
            occurred_at=_AT,
        ),
        "Webhook Ping": WebhookPingDetail(
            ping_id="4c8e2f0a9b1d4e6f8a0b2c4d6e8f0a1b",
            message="a test event from `backdrop webhook ping`: answer 2xx to show that the webhook works",
            requested_by="arn:aws:iam::123456789012:user/ops",
            occurred_at=_AT,
        ),
        "Renditions Published": RenditionsDetail(
            job_id=_JOB,
            source=_SOURCE,
            profile="shoes",
            version=2,
            renditions=[
                RenditionReady(
                    position=1,
                    variant=2,
                    spec="2048 webp",
                    bucket=_SOURCE.bucket,
                    key="published/shoes/red shoe.png/1-2048.webp",
                    format="webp",
                    fit="bounds",
                    width=2048,
                    height=2048,
                    upscaled=True,
                    credits=2.0,
                    claid_request_id="c1d2e3f4",
                )
            ],
            credits=Credits(month="2026-11", used=2.0),
            occurred_at=_AT,
        ),
        "Renditions Failed": RenditionsDetail(
            job_id=_JOB,
            source=_SOURCE,
            profile="shoes",
            version=2,
            failed=[
                RenditionProblem(
                    position=1,
                    variant=2,
                    spec="800 avif",
                    bucket=_SOURCE.bucket,
                    key="published/shoes/red shoe.png/1-800.avif",
                    problem=Problem(code="claid_rejected", message="output format not supported", claid_status=422),
                )
            ],
            credits=Credits(month="2026-11"),
            occurred_at=_AT,
        ),
        "Select Variants": SelectVariantsCommand(
            job_id=_JOB, variants=[2], expected_version=1, chosen_by="merchant dashboard", request_id="shop-7781"
        ),
    }
    return found


def _name(detail_type: str) -> str:
    return detail_type.replace(" ", "")


def _envelope_example(event: EventType, detail: BaseModel) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event.detail_type,
        "source": "storefront" if event.command else "backdrop",
        "account": "123456789012",
        "time": "2026-11-24T10:15:42Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail.model_dump(mode="json", exclude_defaults=event.command),
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as data."""
    found = examples()
    missing = {e.detail_type for e in EVENT_TYPES} - set(found)
    if missing:
        raise LookupError(f"no example for {', '.join(sorted(missing))}: add one to backdrop_kit.asyncapi.examples")
    models: list[tuple[type[BaseModel], Any]] = [(Envelope, "serialization")]
    models += [(e.model, e.mode) for e in EVENT_TYPES]
    keys, definitions = models_json_schema(models, ref_template=REF, by_alias=True)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    messages: dict[str, Any] = {}
    for event in EVENT_TYPES:
        detail_ref = keys[(event.model, event.mode)]
        source = {"type": "string", "not": {"const": "backdrop"}} if event.command else {"const": "backdrop"}
        name = _name(event.detail_type)
        schemas[f"{name}Event"] = {
            "title": f"{event.detail_type} event",
            "allOf": [
                {"$ref": REF.format(model="Envelope")},
                {
                    "type": "object",
                    "properties": {"source": source, "detail-type": {"const": event.detail_type}, "detail": detail_ref},
                },
            ],
        }
        messages[name] = {
            "name": name,
            "title": event.detail_type,
            "summary": event.summary,
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=f"{name}Event")},
            "examples": [{"name": f"{name}Example", "payload": _envelope_example(event, found[event.detail_type])}],
        }
    bus_messages = {
        _name(e.detail_type): {"$ref": f"#/components/messages/{_name(e.detail_type)}"} for e in EVENT_TYPES
    }
    hook = [e for e in EVENT_TYPES if e.webhook]
    webhook_messages = {_name(e.detail_type): {"$ref": f"#/components/messages/{_name(e.detail_type)}"} for e in hook}
    operations: dict[str, Any] = {}
    for event in EVENT_TYPES:
        name = _name(event.detail_type)
        operations[("receive" if event.command else "send") + name] = {
            "action": "receive" if event.command else "send",
            "channel": {"$ref": "#/channels/bus"},
            "summary": event.summary,
            "messages": [{"$ref": f"#/channels/bus/messages/{name}"}],
        }
    for event in hook:
        name = _name(event.detail_type)
        operations[f"post{name}ToWebhook"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/webhook"},
            "summary": f"{event.detail_type} POSTed to the storefront's WebhookUrl",
            "messages": [{"$ref": f"#/channels/webhook/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "backdrop events",
            "version": SCHEMA_VERSION,
            "description": (
                "What backdrop says on its EventBridge bus, the one command a storefront may put there, and what "
                "the webhook POSTs. Within 1.x payloads only grow: ignore fields you do not know. Deduplicate and "
                "order as docs/events.md says per event type; a replayed event keeps its detail and gets a new "
                "envelope `id` and `time`. Generated from the code's models by `python -m backdrop_kit.asyncapi`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "eventbridge": {
                "host": "events.{region}.amazonaws.com",
                "protocol": "https",
                "description": "Amazon EventBridge: subscribe with a rule on the bus (the stack's EventBusName output)",
                "variables": {"region": {"default": "eu-west-1", "description": "the stack's region"}},
            },
            "storefront": {
                "host": "{webhookHost}",
                "protocol": "https",
                "description": "the storefront's endpoint (template parameter WebhookUrl)",
                "variables": {"webhookHost": {"description": "the host of WebhookUrl"}},
                "security": [{"$ref": "#/components/securitySchemes/webhookSecret"}],
            },
        },
        "channels": {
            "bus": {
                "address": "{eventBusName}",
                "title": "the backdrop bus",
                "description": "rules match `source: backdrop` and a `detail-type`; commands use the storefront's "
                "source (StorefrontEventSource)",
                "servers": [{"$ref": "#/servers/eventbridge"}],
                "parameters": {"eventBusName": {"description": "the stack's EventBusName output, e.g. backdrop-prod"}},
                "messages": bus_messages,
            },
            "webhook": {
                "address": "{webhookPath}",
                "title": "the storefront's webhook",
                "description": f"POST, the event as on the bus, header {WEBHOOK_HEADER}; Generation Recorded only "
                "for the statuses in WebhookStatuses",
                "servers": [{"$ref": "#/servers/storefront"}],
                "parameters": {"webhookPath": {"description": "the path of WebhookUrl"}},
                "messages": webhook_messages,
            },
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "webhookSecret": {
                    "type": "httpApiKey",
                    "in": "header",
                    "name": WEBHOOK_HEADER,
                    "description": "the value in the stack's WebhookSecretArn secret: compare it in constant time",
                }
            },
        },
    }


def render(data: dict[str, Any]) -> str:
    header = "# Generated by `python -m backdrop_kit.asyncapi` from the code's models: do not edit by hand.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def main() -> int:
    DOCUMENT.write_text(render(document()))
    print(f"wrote {DOCUMENT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
