"""RenditionsFunction: a published selection (its Variants Published event, from the renditions queue) -> each
rendition made once by Claid's image edit, put at its stable key, and Renditions Published or Failed on the bus.
Composition: backdrop.wiring.editor; the logic: backdrop.editing.Editor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop import wiring
from backdrop.claid.client import Deadline
from backdrop.clients import Clients
from backdrop.config import RenditionsConfig
from backdrop.editing import EditOutcome, detail_of
from backdrop.handback import HandBack, hand_back, together
from backdrop.measures import collecting, emit
from pydantic import ValidationError

config = RenditionsConfig.from_env()
logger = Logger()
metrics = Metrics()
clients = Clients(pool=config.parallel_edits + 5).warm("s3", "dynamodb", "events")
editor = wiring.editor(config, clients)
workers = ThreadPoolExecutor(max_workers=config.parallel_edits, thread_name_prefix="edit")
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    try:
        work = editor.plan(detail_of(record.body))
    except (ValueError, ValidationError) as exc:  # fails until the DLQ keeps it for a person to read
        logger.error("not a Variants Published event; it will land in the DLQ", reason=str(exc)[:500])
        raise
    if work is None:
        logger.info("no renditions to make (none asked for, or the selection was replaced)")
        return
    results = editor.make_all(work, Deadline.from_lambda_context(lambda_context), workers)
    waiting = [r for r in results.values() if isinstance(r, HandBack)]
    if waiting:
        editor.publish_ready(work)  # what is made is published now; the rest when the message comes back
        back = together(waiting)
        logger.info("renditions handed back", job_id=work.detail.job_id, reason=back.reason, detail=back.message)
        raise hand_back(clients.sqs, record, back)
    told = editor.finish(work, {k: r for k, r in results.items() if isinstance(r, EditOutcome)})
    if told is None:
        logger.info("selection replaced while its renditions were made", job_id=work.detail.job_id)
        return
    failed = [(f.key, f.problem.code) for f in told.failed]
    logger.info("renditions", job_id=told.job_id, version=told.version, ready=len(told.renditions), failed=failed)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    editor.attempt_once.start_invocation(context)
    with collecting() as measures:
        response = process_partial_response(event, record_handler, batch, context)
    emit(metrics, measures)
    return response
