"""`backdrop webhook ping`: a test event through the webhook's own path. It is put on the stack's bus with
`source: backdrop` and detail-type `Webhook Ping`, which the webhook rule routes to the API destination like every
event it delivers, so the storefront's endpoint receives it as it receives the others: the same envelope, the
same `X-Backdrop-Webhook-Secret` header, EventBridge's retries, and the webhook DLQ when it is not accepted."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from backdrop.events import WEBHOOK_PING, WebhookPingDetail, put_on_bus

from backdrop_kit.redrive import event_of


def ping(events: Any, bus_name: str, *, requested_by: str | None) -> WebhookPingDetail:
    """Put one ping on the bus; returns its detail (its `ping_id` identifies it at the endpoint)."""
    detail = WebhookPingDetail(
        ping_id=uuid.uuid4().hex,
        message="a test event from `backdrop webhook ping`: answer 2xx to show that the webhook works",
        requested_by=requested_by,
    )
    put_on_bus(events, bus_name, WEBHOOK_PING, detail)
    return detail


def watch_dead_letters(
    sqs: Any,
    dlq_url: str,
    ping_id: str,
    *,
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Wait up to `seconds` for the ping to land in the webhook DLQ (the endpoint refused it, or kept failing):
    its ERROR_MESSAGE, the dead letter taken out of the queue (it is ours); None if it did not land meanwhile.
    Looks once a second (short polls: a long poll would hold the local stack's one-request-at-a-time server), and
    leaves other dead letters as they were."""
    end = clock() + seconds
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,  # another's dead letters stay visible to whoever reads the queue
        ).get("Messages", [])
        for message in messages:
            try:
                event = event_of(message["Body"])
            except ValueError:
                continue
            if event.get("detail-type") == WEBHOOK_PING and event["detail"].get("ping_id") == ping_id:
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                attributes = message.get("MessageAttributes", {})
                return str(attributes.get("ERROR_MESSAGE", {}).get("StringValue", "dead-lettered"))
        left = end - clock()
        if left <= 0:
            return None
        sleep(min(1.0, left))


def as_json(detail: WebhookPingDetail, bus: str, endpoint: str | None, refused: str | None, waited: float) -> str:
    return json.dumps(
        {
            "ping_id": detail.ping_id,
            "bus": bus,
            "endpoint": endpoint,
            "waited_seconds": waited,
            "dead_lettered": refused,
        }
    )
