"""ProcessorFunction: an SQS batch of S3 notifications -> at most one Claid call and one event per upload."""

from __future__ import annotations

import asyncio
import contextvars
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop.claid import Deadline, shared_client
from backdrop.config import ProcessorConfig
from backdrop.events import GenerationDetail
from backdrop.jobs import Job
from backdrop.measures import Measures, collecting
from backdrop.metrics import add_measures
from backdrop.processing import HandBack, JobInProgressElsewhere, Processor, profile_loader
from backdrop.store.reservations import DynamoReservations
from backdrop.uploads import MalformedMessage, UploadRejected, uploads_from_message

# Cold start: environment, clients, persistence. Everything below is reused across invocations.
config = ProcessorConfig.from_env()
logger = Logger()
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; one EMF document per invocation
s3 = boto3.client("s3")
sqs = boto3.client("sqs")
events = boto3.client("events")
dynamodb = boto3.client("dynamodb")
secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
ssm = SSMProvider(boto3_client=boto3.client("ssm"))
# Every record of a batch may be waiting on Claid at once: one connection each.
http = httpx.Client(limits=httpx.Limits(max_connections=config.parallel_records + 2))
workers = ThreadPoolExecutor(max_workers=config.parallel_records, thread_name_prefix="record")
persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table_name, boto3_client=dynamodb)
idempotency = IdempotencyConfig(
    event_key_jmespath="job_id",
    expires_after_seconds=config.idempotency_ttl_seconds,
    raise_on_no_idempotency_key=True,
)
# Every failed record is reported as a batch item failure, even when all of them fail: the outcome for each
# message is the same as a raised error, without an invocation error in the logs for an ordinary retry.
batch = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# One client for every worker thread, made on first use (the API key is read then), on the shared schedule.
claid_client = shared_client(
    lambda: str(secrets.get(config.claid_api_key_secret_arn, max_age=300)),
    dynamodb=dynamodb,
    table_name=config.app_table_name,
    per_second=config.claid_requests_per_second,
    per_minute=config.claid_requests_per_minute,
    base_url=config.claid_base_url,
    scene_path=config.claid_scene_path,
    http=http,
    call_budget=config.claid_call_budget_seconds,
)
_deadline = Deadline.after(900)


processor = Processor(
    config=config,
    s3=s3,
    events=events,
    reservations=DynamoReservations(dynamodb, config.app_table_name, monthly_budget=config.monthly_credit_budget),
    load_profile=profile_loader(ssm, config.profiles_parameter_path),
    claid=claid_client,
)


@idempotent_function(data_keyword_argument="job", config=idempotency, persistence_store=persistence)
def generate_once(job: Job) -> dict[str, Any]:
    """The guarded step: a duplicate delivery of the same job gets the stored outcome, never a second call."""
    return processor.generate(job, _deadline).model_dump(mode="json")


def run_once(job: Job) -> GenerationDetail:
    try:
        return GenerationDetail.model_validate(generate_once(job=job))
    except IdempotencyAlreadyInProgressError:
        raise JobInProgressElsewhere(job.job_id) from None


class StoredRefusalDropped(Exception):
    """Why an outcome the idempotency layer kept is dropped (Powertools asks for the exception)."""


def forget_outcome(job: Job) -> None:
    """Drop what the idempotency layer keeps for this job: a refusal kept before refusals could be lifted
    (Processor._run says when). The persistence layer is configured by then: generate_once ran first."""
    persistence.delete_record(data=job.model_dump(mode="json"), exception=StoredRefusalDropped(job.job_id))


class HandedBack(Exception):
    """Reported as a batch item failure: the message is back in the queue, visible after the hold."""


def _hold_message(record: SQSRecord, seconds: float) -> None:
    """Make a handed-back message visible again after `seconds`, instead of the queue's long timeout."""
    _, _, _, _region, account, name = record.event_source_arn.split(":", 5)
    queue_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.change_message_visibility(
        QueueUrl=queue_url,
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=min(43200, math.ceil(seconds)),
    )


def record_handler(record: SQSRecord) -> None:
    try:
        uploads = uploads_from_message(record.body)
    except MalformedMessage as exc:
        # Not retried into success, but kept: it fails until the DLQ holds it for a person to read.
        logger.error("malformed queue message; it will land in the DLQ", reason=str(exc), message_id=record.message_id)
        raise
    if not uploads:
        logger.info("s3:TestEvent or no ObjectCreated record: nothing to do", message_id=record.message_id)
    for upload in uploads:
        try:
            outcome = processor.handle(upload, run_once, _deadline, forget_outcome)
        except UploadRejected as exc:
            logger.warning("ignored key", reason=exc.reason, key=upload.key)
            continue
        if isinstance(outcome, HandBack):
            if outcome.seconds is not None:
                _hold_message(record, outcome.seconds)
            logger.info(
                "job handed back to the queue",
                job_id=outcome.job_id,
                reason=outcome.reason,
                detail=outcome.message,
                visible_in=outcome.seconds,
            )
            raise HandedBack(outcome.reason)
        logger.info(
            "generation outcome",
            job_id=outcome.job_id,
            status=outcome.status,
            key=upload.key,
            reason=outcome.problem.code if outcome.problem else None,
            images=outcome.images,
        )


def measured_record_handler(record: SQSRecord, measures: Measures) -> None:
    with collecting() as collected:
        try:
            record_handler(record)
        finally:
            measures.items.extend(collected.items)


async def async_record_handler(record: SQSRecord) -> None:
    # Claid answers in seconds to tens of seconds: the batch's records wait on it side by side, each in a
    # worker thread that carries the invocation's context (log keys) and collects its own measures.
    context = contextvars.copy_context()
    measures = Measures()
    try:
        await asyncio.get_running_loop().run_in_executor(
            workers, context.run, measured_record_handler, record, measures
        )
    finally:
        # Back on the event loop's one thread: Metrics (not documented as thread-safe) is only touched here.
        add_measures(metrics, measures)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _deadline
    idempotency.register_lambda_context(context)
    _deadline = Deadline.from_lambda_context(context)
    return async_process_partial_response(
        event=event, record_handler=async_record_handler, processor=batch, context=context
    )
