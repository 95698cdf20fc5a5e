"""RecorderFunction: a generation event from the bus -> kept images, one DynamoDB record, a notification; or a
budget alert -> a notification. Composition: backdrop.wiring.recorder; the logic: backdrop.recording.Recorder."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop import wiring
from backdrop.config import RecorderConfig
from backdrop.events import BUDGET_ALERT, GENERATION_DETAIL_TYPES, SOURCE, BudgetAlertDetail, GenerationDetail
from backdrop.measures import collecting, emit

config = RecorderConfig.from_env()
logger = Logger()
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; EMF documents on stdout, no API call
recorder = wiring.recorder(config)


class UnexpectedEvent(ValueError):
    pass


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # An envelope or a detail that does not validate raises: EventBridge retries, then the recorder DLQ keeps it.
    envelope = EventBridgeModel.model_validate(event)
    source, detail_type = envelope.source, envelope.detail_type
    if source != SOURCE:
        raise UnexpectedEvent(f"not a backdrop event: source={source!r}")
    if detail_type == BUDGET_ALERT:
        alert = BudgetAlertDetail.model_validate(envelope.detail)
        recorder.alert(alert)
        logger.warning("budget alert", kind=alert.kind, month=alert.month, alert=alert.message)
        return {"alert": alert.kind}
    if detail_type not in GENERATION_DETAIL_TYPES:
        raise UnexpectedEvent(f"unexpected detail-type {detail_type!r}")
    detail = GenerationDetail.model_validate(envelope.detail)
    with collecting() as measures:
        outcome = recorder.record(detail)
    emit(metrics, measures)
    logger.info("recorded", job_id=outcome.job_id, status=outcome.status, recorded=outcome.recorded)
    return {
        "job_id": outcome.job_id,
        "status": outcome.status,
        "recorded": outcome.recorded,
        "notified": outcome.notified,
        "outputs": [o.model_dump(exclude={"tmp_url"}) for o in outcome.outputs],
    }
