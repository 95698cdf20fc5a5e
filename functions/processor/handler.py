"""ProcessorFunction: one S3 notification from the jobs queue -> at most one Claid call and one generation event.

One message per invocation (the event source's batch size is 1): a record's time here is its own wait for a Claid
start plus its own call, never a batch's slowest (docs/decisions.md 44). Composition: backdrop.wiring.processor;
the logic: backdrop.processing.Processor.handle."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop import wiring
from backdrop.claid.client import Deadline
from backdrop.clients import Clients
from backdrop.config import ProcessorConfig
from backdrop.handback import HandBack, hand_back
from backdrop.measures import collecting, emit
from backdrop.uploads import MalformedMessage, UploadRejected, uploads_from_message

config = ProcessorConfig.from_env()
logger = Logger()
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; EMF documents on stdout, no API call
clients = Clients().warm("s3", "dynamodb", "events")
processor = wiring.processor(config, clients)
# A failed message is reported as a batch item failure, not an invocation error: same retry, quieter logs.
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    try:
        uploads = uploads_from_message(record.body)
    except MalformedMessage as exc:  # fails until the DLQ keeps it for a person to read
        logger.error("malformed queue message; it will land in the DLQ", reason=str(exc), message_id=record.message_id)
        raise
    if not uploads:
        logger.info("s3:TestEvent or no ObjectCreated record: nothing to do", message_id=record.message_id)
    for upload in uploads:
        try:
            outcome = processor.handle(upload, Deadline.from_lambda_context(lambda_context))
        except UploadRejected as exc:
            logger.warning("ignored key", reason=exc.reason, key=upload.key)
            continue
        if isinstance(outcome, HandBack):
            logger.info("handed back", job_id=outcome.job_id, reason=outcome.reason, detail=outcome.message)
            raise hand_back(clients.sqs, record, outcome)
        reason = outcome.problem.code if outcome.problem else None
        logger.info("generation outcome", job_id=outcome.job_id, status=outcome.status, key=upload.key, reason=reason)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    processor.generate_once.start_invocation(context)
    with collecting() as measures:
        response = process_partial_response(event, record_handler, batch, context)
    emit(metrics, measures)
    return response
