"""PublisherFunction: a recorded generation (its `publish` policy) or a storefront's Select Variants command
-> the chosen variants at their stable keys, and Variants Published or Selection Rejected on the bus."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from backdrop.config import PublisherConfig
from backdrop.events import RECORDED, SOURCE
from backdrop.measures import collecting
from backdrop.metrics import add_measures
from backdrop.publishing import SELECT_VARIANTS, ChoiceOutcome, Publisher
from backdrop.store.jobs import DynamoJobs
from backdrop.store.reservations import DynamoReservations
from backdrop.store.selections import DynamoSelections

config = PublisherConfig.from_env()
logger = Logger()
metrics = Metrics()  # SelectionsPublished by ChosenBy, SelectionsRejected by Reason (EMF: no API call)
dynamodb = boto3.client("dynamodb")
publisher = Publisher(
    s3=boto3.client("s3"),
    events=boto3.client("events"),
    jobs=DynamoJobs(dynamodb, config.app_table_name),
    selections=DynamoSelections(dynamodb, config.app_table_name),
    reservations=DynamoReservations(dynamodb, config.app_table_name),
    event_bus_name=config.event_bus_name,
    incoming_prefix=config.incoming_prefix,
    generated_prefix=config.generated_prefix,
    published_prefix=config.published_prefix,
)


class UnexpectedEvent(ValueError):
    pass


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source, detail_type, detail = event.get("source"), event.get("detail-type"), event.get("detail")
    outcome: ChoiceOutcome | None
    with collecting() as measures:
        if source == SOURCE and detail_type == RECORDED and isinstance(detail, dict):
            outcome = publisher.apply_policy(detail)
        elif source != SOURCE and detail_type == SELECT_VARIANTS:
            # A bad command is answered on the bus (Selection Rejected), never retried.
            outcome = publisher.command(str(source), detail)
        else:
            raise UnexpectedEvent(f"not for the publisher: source={source!r} detail-type={detail_type!r}")
    add_measures(metrics, measures)
    if outcome is None:
        logger.info("nothing to publish", job_id=(detail or {}).get("job_id"))
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
