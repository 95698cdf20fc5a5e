"""RecorderFunction: a generation event from the bus -> kept images, one DynamoDB record, a notification."""

from __future__ import annotations

from typing import Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop.config import RecorderConfig
from backdrop.events import BUDGET_ALERT, GENERATION_DETAIL_TYPES, BudgetAlertDetail, GenerationDetail
from backdrop.recording import Recorder
from backdrop.store.jobs import DynamoJobs

config = RecorderConfig.from_env()
logger = Logger()
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; one EMF line per invocation
dynamodb = boto3.client("dynamodb")
recorder = Recorder(
    config=config,
    s3=boto3.client("s3"),
    sns=boto3.client("sns"),
    events=boto3.client("events"),
    jobs=DynamoJobs(dynamodb, config.app_table_name),
    http=httpx.Client(follow_redirects=False),
)


class UnexpectedEvent(ValueError):
    pass


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail_type = event.get("detail-type")
    if event.get("source") != "backdrop":
        raise UnexpectedEvent(f"not a backdrop event: source={event.get('source')!r}")
    if detail_type == BUDGET_ALERT:
        alert = BudgetAlertDetail.model_validate(event.get("detail"))
        recorder.alert(alert)
        logger.warning("budget alert", kind=alert.kind, month=alert.month, alert=alert.message)
        return {"alert": alert.kind}
    if detail_type not in GENERATION_DETAIL_TYPES:
        raise UnexpectedEvent(f"unexpected detail-type {detail_type!r}")
    # A detail that does not validate raises: EventBridge retries, then the recorder DLQ keeps it.
    detail = GenerationDetail.model_validate(event.get("detail"))
    outcome = recorder.record(detail)
    if outcome.recorded:  # counted once per job, like the ledger
        metrics.add_metric(name=f"Jobs{detail.status.title()}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="CreditsUsed", unit=MetricUnit.Count, value=detail.credits.used)
        metrics.add_metric(name="ImagesGenerated", unit=MetricUnit.Count, value=detail.images)
    logger.info(
        "recorded",
        job_id=outcome.job_id,
        status=outcome.status,
        recorded=outcome.recorded,
        notified=outcome.notified,
    )
    return {
        "job_id": outcome.job_id,
        "status": outcome.status,
        "recorded": outcome.recorded,
        "notified": outcome.notified,
        "outputs": [o.model_dump(exclude={"tmp_url"}) for o in outcome.outputs],
    }
