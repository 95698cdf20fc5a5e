"""Move dead letters back to where they came from once the cause is fixed (Claid credits topped up, a bug fixed).

Two kinds of dead-letter queue, two ways back:
- a queue's DLQ (JobsDLQ: its redrive policy names it): each message goes back to that queue, body and
  attributes as they were, so the processor's idempotency sees the same job;
- an EventBridge target's DLQ (RecorderDLQ, PublisherDLQ, WebhookDLQ): each event goes back on the stack's bus, its
  source, detail-type, detail and resources as they were (EventBridge gives it a new `id` and `time`), unwrapped from
  Lambda's invocation record when Lambda wrote one.

Either way a message is sent before it is deleted (a crash part way repeats at most the messages in hand, which the
pipeline's idempotency absorbs; none is lost), only the messages the DLQ held when the run started are moved (a
message that fails again and comes back is not moved round and round), and a message that cannot be put back is
kept in the DLQ and said why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[str], None]


class RedriveRefused(ValueError):
    """The target is not where this DLQ's messages came from: moving them there would loop or misroute them."""


@dataclass
class Moved:
    """What a run did: how many went back, and each message kept in the DLQ with the reason."""

    moved: int = 0
    kept: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"moved": self.moved, "kept": self.kept}


def queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def source_queues(sqs: Any, dlq_url: str) -> list[str]:
    """The queues whose redrive policy sends their dead letters to this DLQ (none for an EventBridge target's)."""
    urls: list[str] = []
    for page in sqs.get_paginator("list_dead_letter_source_queues").paginate(QueueUrl=dlq_url):
        urls.extend(page.get("queueUrls", []))
    return urls


def check_target(sqs: Any, dlq_url: str, queue_url: str) -> None:
    """Refuse a target that is the DLQ itself (each message would come straight back, forever) or a queue whose
    redrive policy does not name this DLQ (its messages never came from there)."""
    if queue_url.rstrip("/") == dlq_url.rstrip("/"):
        raise RedriveRefused(f"{queue_url} is the dead-letter queue itself: its messages would come straight back")
    dlq = queue_arn(sqs, dlq_url)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])[
        "Attributes"
    ]
    policy = json.loads(attributes.get("RedrivePolicy", "{}") or "{}")
    if policy.get("deadLetterTargetArn") != dlq:
        names = ", ".join(source_queues(sqs, dlq_url)) or "none: its messages come from an EventBridge target"
        raise RedriveRefused(
            f"{queue_url} does not send its dead letters to {dlq_url}, so they did not come from it; "
            f"this DLQ's source queues: {names}"
        )


def _dead_letters(sqs: Any, dlq_url: str, *, limit: int, hold: int) -> Iterator[dict[str, Any]]:
    """The messages the DLQ holds now, each once, at most `limit` (0 = all), received for `hold` seconds."""
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    held = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    want = min(held, limit) if limit else held
    seen: set[str] = set()
    while len(seen) < want:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, want - len(seen)),
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=hold,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, limit: int = 0, progress: Progress = lambda _: None) -> int:
    """Back to the source queue (checked: check_target). Returns how many were moved."""
    check_target(sqs, dlq_url, queue_url)
    return replay_to_queue(sqs, dlq_url, queue_url, limit=limit, progress=progress).moved


def replay_to_queue(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    *,
    limit: int = 0,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
) -> Moved:
    """Each message back to `queue_url` as it was (the caller has checked the target)."""
    done = Moved()
    for message in _dead_letters(sqs, dlq_url, limit=limit, hold=0 if dry_run else 60):
        if dry_run:
            done.moved += 1
            continue
        send: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
        if message.get("MessageAttributes"):
            send["MessageAttributes"] = message["MessageAttributes"]
        sqs.send_message(**send)
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        done.moved += 1
        if done.moved % 10 == 0:
            progress(f"moved {done.moved} message(s)")
    return done


def event_of(body: str) -> dict[str, Any]:
    """The EventBridge event a dead letter holds: Lambda's invocation record's `requestPayload` (a function that
    kept failing), or the event itself (EventBridge could not deliver it). ValueError for anything else."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("not JSON") from None
    if isinstance(payload, dict) and isinstance(payload.get("requestPayload"), dict):
        payload = payload["requestPayload"]
    if not isinstance(payload, dict) or not all(k in payload for k in ("source", "detail-type", "detail")):
        raise ValueError("neither an EventBridge event nor a Lambda invocation record holding one")
    return payload


def replay_to_bus(
    sqs: Any,
    events: Any,
    dlq_url: str,
    bus_name: str,
    *,
    sources: set[str],
    limit: int = 0,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
) -> Moved:
    """Each event back on the bus, as it was: source, detail-type, detail and resources (EventBridge gives it a new
    id and time). Only events from `sources` (backdrop and the storefront's commands): anything else stays."""
    done = Moved()
    for message in _dead_letters(sqs, dlq_url, limit=limit, hold=0 if dry_run else 60):
        try:
            event = event_of(message["Body"])
            if event["source"] not in sources:
                raise ValueError(f"source {event['source']!r} is not this stack's ({', '.join(sorted(sources))})")
        except ValueError as exc:
            done.kept.append({"message_id": message["MessageId"], "reason": str(exc)})
            continue
        if dry_run:
            done.moved += 1
            continue
        answer = events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": list(event.get("resources", [])),
                    "EventBusName": bus_name,
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            entry = answer["Entries"][0]
            reason = f"PutEvents refused it: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            done.kept.append({"message_id": message["MessageId"], "reason": reason})
            continue
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        done.moved += 1
        if done.moved % 10 == 0:
            progress(f"replayed {done.moved} event(s)")
    return done
