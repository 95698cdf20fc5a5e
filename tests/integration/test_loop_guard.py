"""Loop-proof even when the bucket's notification filter is wrong: the pipeline's own output never becomes a job.

template.yaml's Rules refuse overlapping prefixes at deploy (tests/template); these tests break the filter
on purpose, after deploy, the way a hand edit in the console would, and show the processor's own guard holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from backdrop.jobs import current_month
from backdrop.store.ledger import DynamoLedger
from backdrop_kit.runner import API_CALLS

from .conftest import Pipeline


def _watch_the_whole_bucket(p: Pipeline) -> None:
    """A notification with no prefix filter (an empty prefix): every object written reaches the jobs queue."""
    queue_arn = p.stack.attributes[("JobsQueue", "Arn")]
    p.s3.put_bucket_notification_configuration(
        Bucket=p.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                }
            ]
        },
    )


@pytest.mark.parametrize("mode", ["connected", "temporary"])
def test_output_under_a_misconfigured_filter_is_never_generated_again(make_pipeline, mode):
    p: Pipeline = make_pipeline(mode)
    _watch_the_whole_bucket(p)
    API_CALLS.clear()
    # Published too: the publisher's copies under published/ are output as well.
    p.upload("incoming/espresso-cup.png", metadata={"backdrop-number-of-images": "2", "backdrop-publish": "all"})
    p.drain()

    generated = p.generated()
    assert len(generated) == 2
    published = sorted(o["Key"] for o in p.s3.list_objects_v2(Bucket=p.bucket, Prefix="published/")["Contents"])
    assert published == ["published/espresso-cup.png/1.jpeg", "published/espresso-cup.png/2.jpeg"]
    generated += published
    # The misconfiguration is real: the variants were delivered to the processor as uploads ...
    delivered = sum(i.records for i in p.runner.stats.timeline if i.function_id == "ProcessorFunction")
    assert delivered >= 1 + len(generated)
    # ... and refused before anything was read, reserved or called.
    processor_s3 = [c for c in API_CALLS if c.function_id == "ProcessorFunction" and c.service == "s3"]
    touched = {str(c.params.get("Key")) for c in processor_s3}
    assert not touched & set(generated)
    assert len(p.scene_calls()) == 1
    assert list(p.jobs()) == ["incoming/espresso-cup.png"]  # no record for the variants either
    total = DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())["total"]
    assert total["credits_used"] == Decimal(4) and total["credits_reserved"] == 0
    assert p.queue_depth("JobsQueue") == 0 and p.queue_depth("JobsDLQ") == 0
