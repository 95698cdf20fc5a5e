"""Plays EventBridge's API destination locally: moto does not call them, so a rule that targets one delivers to an
inbox queue, and this POSTs each event to the endpoint with the connection's header, as EventBridge would.

It follows EventBridge's rules for API destinations: the event as it is on the bus is the body, a 2xx is
delivered, 429/5xx/connection errors are retried (up to the target's attempts, capped locally), any other
4xx is not retried, and what is not delivered goes to the target's dead-letter queue with the error attached.
"""

from __future__ import annotations

from typing import Any

import httpx

from backdrop_kit.stack import LOCAL_VISIBILITY_TIMEOUT, WebhookTarget

IN_FLIGHT_VISIBILITY_TIMEOUT = 60


def _retryable(status: int) -> bool:
    return status in (401, 407, 409, 429) or status >= 500


def forward_once(sqs: Any, target: WebhookTarget, http: httpx.Client) -> int:
    """Deliver what the inbox holds now; returns how many events were handled (delivered, retried or dead)."""
    messages = sqs.receive_message(
        QueueUrl=target.inbox_url,
        MaxNumberOfMessages=10,
        AttributeNames=["ApproximateReceiveCount"],
        VisibilityTimeout=IN_FLIGHT_VISIBILITY_TIMEOUT,
    ).get("Messages", [])
    for message in messages:
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            answer = http.request(
                target.method,
                target.endpoint,
                content=message["Body"],
                headers={"Content-Type": "application/json; charset=utf-8", target.header_name: target.header_value},
                timeout=5.0,  # EventBridge waits 5 s for an API destination
            )
            error, retry = (
                (None, False) if answer.is_success else (f"HTTP {answer.status_code}", _retryable(answer.status_code))
            )
        except httpx.HTTPError as exc:
            error, retry = f"{type(exc).__name__}: {exc}", True
        if error is not None and retry and attempt < target.max_attempts:
            sqs.change_message_visibility(
                QueueUrl=target.inbox_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=LOCAL_VISIBILITY_TIMEOUT,
            )
            continue
        if error is not None and target.dead_letter_url:
            sqs.send_message(
                QueueUrl=target.dead_letter_url,
                MessageBody=message["Body"],
                MessageAttributes={
                    "ERROR_MESSAGE": {"DataType": "String", "StringValue": error[:500]},
                    "RULE_ARN": {"DataType": "String", "StringValue": target.rule_id},
                },
            )
        sqs.delete_message(QueueUrl=target.inbox_url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)
