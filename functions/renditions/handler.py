"""RenditionsFunction: a published selection (its Variants Published event, from the renditions queue) -> each
rendition made once by Claid's image edit, put at its stable key, and Renditions Published or Failed on the bus."""

from __future__ import annotations

import contextvars
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop.claid import Deadline, shared_client
from backdrop.config import RenditionsConfig
from backdrop.editing import Edit, EditInProgressElsewhere, Editor, EditOutcome, HandBack, detail_of
from backdrop.measures import Measures, collecting
from backdrop.metrics import add_measures
from backdrop.publishing import Publisher
from backdrop.store.jobs import DynamoJobs
from backdrop.store.ledger import DynamoLedger
from backdrop.store.reservations import DynamoReservations
from backdrop.store.selections import DynamoSelections
from botocore.config import Config
from pydantic import ValidationError

# Cold start: environment, clients, persistence. Everything below is reused across invocations.
config = RenditionsConfig.from_env()
logger = Logger()
metrics = Metrics()
# A selection's edits share these clients from their worker threads (and the copies that publish them).
s3 = boto3.client("s3", config=Config(max_pool_connections=config.parallel_edits + 5))
sqs = boto3.client("sqs")
events = boto3.client("events")
dynamodb = boto3.client("dynamodb", config=Config(max_pool_connections=config.parallel_edits + 5))
secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
# A selection's edits wait on Claid side by side: one connection each.
http = httpx.Client(limits=httpx.Limits(max_connections=config.parallel_edits + 2))
workers = ThreadPoolExecutor(max_workers=config.parallel_edits, thread_name_prefix="edit")
persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table_name, boto3_client=dynamodb)
idempotency = IdempotencyConfig(
    event_key_jmespath="edit_id",
    expires_after_seconds=config.idempotency_ttl_seconds,
    raise_on_no_idempotency_key=True,
)
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# One client for every worker thread, made on first use (the API key is read then), on the schedule every function
# shares: one rate limit for the account, both endpoints.
claid_client = shared_client(
    lambda: str(secrets.get(config.claid_api_key_secret_arn, max_age=300)),
    dynamodb=dynamodb,
    table_name=config.app_table_name,
    per_second=config.claid_requests_per_second,
    per_minute=config.claid_requests_per_minute,
    base_url=config.claid_base_url,
    edit_path=config.claid_edit_path,
    http=http,
    call_budget=config.claid_call_budget_seconds,
)
_deadline = Deadline.after(900)


reservations = DynamoReservations(dynamodb, config.app_table_name, monthly_budget=config.monthly_credit_budget)
editor = Editor(
    config=config,
    s3=s3,
    events=events,
    reservations=reservations,
    ledger=DynamoLedger(dynamodb, config.app_table_name),
    publisher=Publisher(
        s3=s3,
        events=events,
        jobs=DynamoJobs(dynamodb, config.app_table_name),
        selections=DynamoSelections(dynamodb, config.app_table_name),
        reservations=reservations,
        event_bus_name=config.event_bus_name,
        incoming_prefix=config.incoming_prefix,
        generated_prefix=config.generated_prefix,
        published_prefix=config.published_prefix,
    ),
    claid=claid_client,
    http=httpx.Client(follow_redirects=False),
)


@idempotent_function(data_keyword_argument="edit", config=idempotency, persistence_store=persistence)
def edit_once(edit: Edit) -> dict[str, Any]:
    """The guarded step: a duplicate of the same edit gets the stored outcome, never a second call."""
    return editor.attempt(edit, _deadline).model_dump(mode="json")


def run_once(edit: Edit) -> EditOutcome:
    try:
        return EditOutcome.model_validate(edit_once(edit=edit))
    except IdempotencyAlreadyInProgressError:
        raise EditInProgressElsewhere(edit.edit_id) from None


class HandedBack(Exception):
    """Reported as a batch item failure: the message is back in the queue, visible after the hold."""


def _hold_message(record: SQSRecord, seconds: float) -> None:
    _, _, _, _region, account, name = record.event_source_arn.split(":", 5)
    queue_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=min(43200, math.ceil(seconds))
    )


def _make(edit: Edit, measures: Measures) -> EditOutcome | HandBack:
    with collecting() as collected:
        try:
            return editor.make(edit, run_once, _deadline)
        finally:
            measures.items.extend(collected.items)


def record_handler(record: SQSRecord) -> None:
    try:
        work = editor.plan(detail_of(record.body))
    except (ValueError, ValidationError) as exc:
        # Not retried into success, but kept: it fails until the DLQ holds it for a person to read.
        logger.error("not a Variants Published event; it will land in the DLQ", reason=str(exc)[:500])
        raise
    if work is None:
        logger.info("no renditions to make (none asked for, or the selection was replaced)")
        return
    # Each edit waits on Claid in a worker thread carrying the invocation's context (log keys) and its own measures;
    # Metrics (not documented as thread-safe) is only touched here, on this thread.
    edits = list(work.edits.values())
    measures = [Measures() for _ in edits]
    futures = [
        workers.submit(contextvars.copy_context().run, _make, edit, m) for edit, m in zip(edits, measures, strict=True)
    ]
    try:
        results = {edit.edit_id: future.result() for edit, future in zip(edits, futures, strict=True)}
    finally:
        for m in measures:
            add_measures(metrics, m)
    waiting = [r for r in results.values() if isinstance(r, HandBack)]
    if waiting:
        editor.publish_ready(work)  # what is made is published now; the rest when the message comes back
        holds = [w.seconds for w in waiting if w.seconds is not None]
        if len(holds) == len(waiting):
            _hold_message(record, max(holds))
        logger.info(
            "renditions handed back to the queue",
            job_id=work.detail.job_id,
            waiting=len(waiting),
            reasons=sorted({w.reason for w in waiting}),
            detail=waiting[0].message,
        )
        raise HandedBack(waiting[0].reason)
    outcomes = {edit_id: r for edit_id, r in results.items() if isinstance(r, EditOutcome)}
    told = editor.finish(work, outcomes)
    if told is None:
        logger.info("selection replaced while its renditions were made", job_id=work.detail.job_id)
        return
    logger.info(
        "renditions",
        job_id=told.job_id,
        version=told.version,
        ready=[r.key for r in told.renditions],
        failed=[(f.key, f.problem.code) for f in told.failed],
        credits=told.credits.used,
    )


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _deadline
    idempotency.register_lambda_context(context)
    _deadline = Deadline.from_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=batch, context=context)
