"""PublisherFunction: a recorded generation (its `publish` policy) or a storefront's Select Variants command
-> the chosen variants at their stable keys, and Variants Published or Selection Rejected on the bus."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop import wiring
from backdrop.config import PublisherConfig
from backdrop.events import RECORDED, SOURCE
from backdrop.measures import collecting, emit
from backdrop.publishing import SELECT_VARIANTS, ChoiceOutcome

config = PublisherConfig.from_env()
logger = Logger()
metrics = Metrics()  # SelectionsPublished by ChosenBy, SelectionsRejected by Reason (EMF: no API call)
publisher = wiring.publisher(config)


class UnexpectedEvent(ValueError):
    pass


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = EventBridgeModel.model_validate(event)  # EventBridge's own envelope: always whole
    source, detail_type = envelope.source, envelope.detail_type
    detail: dict[str, Any] = envelope.detail if isinstance(envelope.detail, dict) else {}
    outcome: ChoiceOutcome | None
    with collecting() as measures:
        if source == SOURCE and detail_type == RECORDED:
            outcome = publisher.apply_policy(detail)
        elif source != SOURCE and detail_type == SELECT_VARIANTS:
            # A bad command is answered on the bus (Selection Rejected), never retried.
            outcome = publisher.command(str(source), detail)
        else:
            raise UnexpectedEvent(f"not for the publisher: source={source!r} detail-type={detail_type!r}")
    emit(metrics, measures)
    if outcome is None:
        logger.info("nothing to publish", job_id=detail.get("job_id"))
        return {"published": False}
    if outcome.published is not None:
        done = outcome.published
        logger.info(
            "published",
            job_id=done.job_id,
            version=done.version,
            chosen_by=done.selection.chosen_by,
            keys=[p.key for p in done.published],
        )
        return {"published": True, "version": done.version, "keys": [p.key for p in done.published]}
    assert outcome.rejected is not None
    logger.warning(
        "selection rejected",
        job_id=outcome.rejected.job_id,
        reason=outcome.rejected.reason,
        detail_message=outcome.rejected.message,
    )
    return {"published": False, "rejected": outcome.rejected.reason}
