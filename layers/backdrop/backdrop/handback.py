"""A message that must be tried again later goes back to its queue: the function reports it as a batch item
failure (`HandedBack`), and first makes it visible again after the time the logic asked for, instead of after the
queue's long visibility timeout (sized for a whole call)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# SQS's longest visibility timeout: 12 hours.
MAX_VISIBILITY_SECONDS = 43200


@dataclass(frozen=True)
class HandBack:
    """The message goes back to the queue untouched, visible again after `seconds`."""

    seconds: float | None  # None: after the queue's own visibility timeout
    reason: str
    message: str
    job_id: str | None = None


class HandedBack(Exception):
    """Reported as a batch item failure: the message is back in the queue, visible after the hold."""


def together(backs: list[HandBack]) -> HandBack:
    """One message's hand-back for several pieces of work that wait (a selection's edits): back when the last of
    them may go on (the queue's own timeout if any named none), for the first one's reason."""
    holds = [b.seconds for b in backs]
    seconds = None if None in holds else max(h for h in holds if h is not None)
    messages = "; ".join(sorted({b.message for b in backs}))
    return HandBack(seconds, backs[0].reason, f"{len(backs)} waiting: {messages}")


def hand_back(sqs: Any, record: SQSRecord, back: HandBack) -> HandedBack:
    """Sets the message's hold (when the logic named one) and returns the exception that reports it."""
    if back.seconds is not None:
        sqs.change_message_visibility(
            QueueUrl=record.queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(MAX_VISIBILITY_SECONDS, math.ceil(back.seconds)),
        )
    return HandedBack(back.reason)
