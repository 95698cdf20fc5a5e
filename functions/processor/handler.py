"""ProcessorFunction: an SQS batch of S3 notifications -> at most one Claid call and one event per upload."""

from __future__ import annotations

import math
from typing import Any

import boto3
import httpx
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
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
from backdrop.claid import ClaidClient, ClaidRateLimited, ClaidTransientError, Deadline
from backdrop.claid.errors import ClaidOutOfCredits
from backdrop.config import ProcessorConfig
from backdrop.events import GenerationDetail, publish
from backdrop.jobs import Job
from backdrop.ledger import Ledger
from backdrop.processing import Processor, profile_loader
from backdrop.uploads import MalformedMessage, UploadRejected, uploads_from_message

# Cold start: environment, clients, persistence. Everything below is reused across invocations.
config = ProcessorConfig.from_env()
logger = Logger()
s3 = boto3.client("s3")
sqs = boto3.client("sqs")
events = boto3.client("events")
dynamodb = boto3.client("dynamodb")
secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
ssm = SSMProvider(boto3_client=boto3.client("ssm"))
http = httpx.Client()
persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table_name, boto3_client=dynamodb)
idempotency = IdempotencyConfig(
    event_key_jmespath="job_id",
    expires_after_seconds=config.idempotency_ttl_seconds,
    raise_on_no_idempotency_key=True,
)
# Every failed record is reported as a batch item failure, even when all of them fail: the outcome for each
# message is the same as a raised error, without an invocation error in the logs for an ordinary retry.
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_claid: ClaidClient | None = None
_deadline = Deadline.after(900)


def claid_client() -> ClaidClient:
    global _claid
    if _claid is None:
        api_key = str(secrets.get(config.claid_api_key_secret_arn, max_age=300))
        _claid = ClaidClient(api_key, base_url=config.claid_base_url, scene_path=config.claid_scene_path, http=http)
    return _claid


processor = Processor(
    config=config,
    s3=s3,
    events=events,
    ledger=Ledger(dynamodb, config.app_table_name, monthly_budget=config.monthly_credit_budget),
    load_profile=profile_loader(ssm, config.profiles_parameter_path),
    claid=claid_client,
)


@idempotent_function(data_keyword_argument="job", config=idempotency, persistence_store=persistence)
def generate_once(job: Job) -> dict[str, Any]:
    """The guarded step: a duplicate delivery of the same job gets the stored outcome, never a second call."""
    return processor.generate(job, _deadline).model_dump(mode="json")


def _hold_message(record: SQSRecord, seconds: float) -> None:
    """Keep a message invisible until Claid's rate limit resets, instead of the queue's fixed timeout."""
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
            planned = processor.plan(upload)
        except UploadRejected as exc:
            logger.warning("ignored key", reason=exc.reason, key=upload.key)
            continue
        if isinstance(planned, GenerationDetail):
            outcome = planned
        else:
            try:
                outcome = GenerationDetail.model_validate(generate_once(job=planned))
            except IdempotencyAlreadyInProgressError:
                logger.info("job already in progress elsewhere; retrying later", job_id=planned.job_id)
                raise
            except ClaidRateLimited as exc:
                if exc.retry_after:
                    _hold_message(record, exc.retry_after)
                logger.warning(
                    "Claid rate limit; job goes back to the queue",
                    job_id=planned.job_id,
                    retry_after=exc.retry_after,
                    claid_request_id=exc.request_id,
                )
                raise
            except (ClaidTransientError, ClaidOutOfCredits) as exc:
                logger.warning(
                    "Claid trouble; job goes back to the queue",
                    job_id=planned.job_id,
                    reason=exc.reason,
                    status=exc.status,
                    claid_request_id=exc.request_id,
                )
                raise
        publish(events, config.event_bus_name, outcome.detail_type, outcome)
        logger.info(
            "generation outcome",
            job_id=outcome.job_id,
            status=outcome.status,
            key=upload.key,
            reason=outcome.problem.code if outcome.problem else None,
            images=outcome.images,
        )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _deadline
    idempotency.register_lambda_context(context)
    _deadline = Deadline.from_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=batch, context=context)
