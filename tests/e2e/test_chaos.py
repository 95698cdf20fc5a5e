"""Chaos: hundreds of uploads, every notification delivered twice, 10% Claid faults (answers lost after charging
among them), a budget that runs out part way, several processors at once. Then the invariants are checked and the
figures printed."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest
from backdrop.jobs import current_month
from backdrop.store.ledger import DynamoLedger
from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.runner import Runner
from backdrop_kit.stack import LocalStack, StackOptions

from ..integration.conftest import CUP, VASE

UPLOADS = 200
WORKERS = 3
IMAGES_PER_JOB = 1  # 2 credits each; the budget covers about 60% of the jobs
BUDGET = Decimal(2 * IMAGES_PER_JOB * int(UPLOADS * 0.6))


@pytest.mark.slow
def test_chaos_invariants_hold():
    emulator = EmulatorConfig(
        fault_rate=0.10,
        fault_kinds=("429", "500", "slow", "drop", "lost"),
        seed=2026,
        slow_seconds=0.3,
        rate_per_second=40,
        rate_per_minute=2400,
    )
    # The stack's shared start schedule keeps the emulator's (raised) limits; unanswered calls settle quickly.
    parameters = {
        "ClaidRequestsPerSecond": "40",
        "ClaidRequestsPerMinute": "2400",
        "ClaidUnknownOutcomeSettleSeconds": "2",
    }
    options = StackOptions(
        monthly_credit_budget=float(BUDGET), emulator=emulator, log_level="WARNING", parameters=parameters
    )
    with LocalStack(options) as stack:
        s3, sqs = stack.client("s3"), stack.client("sqs")
        queue = stack.queue_url("JobsQueue")
        keys = [f"incoming/chaos/{i:03d}-{'cup' if i % 2 else 'vase'}.png" for i in range(UPLOADS)]
        stack.put_profile("chaos", {"number_of_images": IMAGES_PER_JOB, "prompt": "on a concrete plinth"})
        for i, key in enumerate(keys):
            s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=CUP if i % 2 else VASE)

        # Take every notification S3 sent and deliver it twice.
        notifications: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for m in messages:
                notifications.append(m["Body"])
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        created = [n for n in notifications if "ObjectCreated" in n]
        assert len(created) == UPLOADS
        for body in created * 2:
            sqs.send_message(QueueUrl=queue, MessageBody=body)

        runner = Runner(stack, processor_workers=WORKERS)
        stats = runner.drain(timeout=480)

        jobs = stack.job_items()
        calls = stack.emulator.calls
        dlq_depth = int(
            sqs.get_queue_attributes(
                QueueUrl=stack.queue_url("JobsDLQ"), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        usage = DynamoLedger(stack.client("dynamodb"), stack.app_table).month_usage(current_month())["total"]

    # Every upload has a record, and at most one outcome: the refusals a bigger budget would lift (a budget freed
    # by a release may let a later delivery through) are recorded beside it, never as its verdict.
    per_source = Counter(j["source_key"] for j in jobs)
    assert sorted(per_source) == sorted(keys), f"missing: {set(keys) - set(per_source)}"
    outcomes = Counter(j["source_key"] for j in jobs if j["final"])
    assert set(outcomes.values()) <= {1}
    assert all(j["reason"] == "budget_exhausted" for j in jobs if not j["final"])
    # Claid charged at most once per job (charged calls are the 200s; each wrote into its job's folder).
    charged = [c for c in calls if c.status == 200]  # answered or not ("lost": charged, answer never arrived)
    per_destination = Counter(c.destination for c in charged)
    assert per_destination and max(per_destination.values()) == 1
    # The ledger equals the sum of the job items, equals 2 x images Claid returned.
    images_returned = sum(c.images_returned for c in charged)
    credits_charged = sum(Decimal(str(c.credits_charged)) for c in charged)
    assert usage["credits_used"] == sum(Decimal(j["credits"]) for j in jobs)
    assert usage["credits_used"] == 2 * images_returned == credits_charged
    # Used + reserved never exceeded the budget, and the budget did run out part way.
    assert usage["committed"] <= BUDGET and credits_charged <= BUDGET
    statuses = Counter(j["status"] for j in jobs)
    reasons = Counter(j.get("reason", "-") for j in jobs)
    assert reasons["budget_exhausted"] > 0 and statuses["succeeded"] > 0
    assert usage["credits_reserved"] == 0 and dlq_depth == 0

    faults = Counter(c.fault for c in calls if c.fault)
    print(
        "\nchaos figures:",
        json.dumps(
            {
                "uploads": UPLOADS,
                "deliveries": len(created) * 2,
                "duplicates_absorbed": len(created) * 2 - UPLOADS,
                "processor_workers": WORKERS,
                "claid_requests": len(calls),
                "claid_charged_calls": len(charged),
                "faults_injected": dict(faults),
                "batch_item_failures": stats.batch_item_failures,
                "statuses": dict(statuses),
                "reasons": dict(reasons),
                "dead_lettered": dlq_depth,
                "credits_used": float(usage["credits_used"]),
                "budget": float(BUDGET),
            },
            indent=2,
        ),
    )
