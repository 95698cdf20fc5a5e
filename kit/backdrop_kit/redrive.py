"""Move dead letters back to their source queue once the cause is fixed (Claid credits topped up, a bug fixed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def redrive(
    sqs: Any, dlq_url: str, queue_url: str, *, limit: int = 0, progress: Callable[[str], None] = lambda _: None
) -> int:
    """Each message is sent to the queue before it is deleted from the DLQ: a crash part way duplicates at
    most one message, which the processor's idempotency absorbs; it never loses one."""
    moved = 0
    while not limit or moved < limit:
        want = 10 if not limit else min(10, limit - moved)
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=want, MessageAttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            send: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                send["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**send)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
        progress(f"moved {moved} message(s)")
    return moved
