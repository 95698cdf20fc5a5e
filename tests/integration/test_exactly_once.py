"""Invariants 1-3: duplicated deliveries pay once; the ledger is the sum of the jobs; the budget holds."""

from __future__ import annotations

from decimal import Decimal

from backdrop.jobs import current_month
from backdrop.store.ledger import DynamoLedger

from .conftest import Pipeline


def usage(p: Pipeline) -> dict:
    return DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())["total"]


def test_duplicated_notification_pays_once(make_pipeline):
    # A copy delivered while the first is calling Claid is held for the call budget (in_progress_elsewhere), and
    # the drain waits for it to come back: the shortest budget the template allows keeps that wait to 30 s.
    pipeline: Pipeline = make_pipeline(parameters={"ClaidCallBudgetSeconds": "30"})
    pipeline.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "2"})
    queue = pipeline.stack.queue_url("JobsQueue")
    # Read the real notification, then deliver it twice more, as S3 and SQS are allowed to.
    bodies = []
    while not bodies or all("TestEvent" in b for b in bodies):
        bodies = [
            m["Body"]
            for m in pipeline.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
                "Messages", []
            )
        ]
    notification = next(b for b in bodies if "ObjectCreated" in b)
    for _ in range(2):
        pipeline.sqs.send_message(QueueUrl=queue, MessageBody=notification)
    pipeline.drain()

    assert len(pipeline.scene_calls(200)) == 1
    jobs = pipeline.jobs()
    assert len(jobs) == 1 and jobs["incoming/cup.png"]["credits"] == Decimal(4)
    total = usage(pipeline)
    assert total["credits_used"] == Decimal(4) and total["jobs_succeeded"] == 1
    assert len(pipeline.stack.notifications()) == 1


def test_redelivered_generation_event_is_recorded_once(pipeline: Pipeline):
    pipeline.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    pipeline.drain()
    [succeeded] = [e for e in pipeline.stack.bus_events() if e["detail-type"] == "Generation Succeeded"]
    outcome = pipeline.runner.invoke("RecorderFunction", succeeded)
    assert outcome["recorded"] is False and outcome["notified"] is False
    assert usage(pipeline)["credits_used"] == Decimal(2)


def test_budget_is_never_exceeded(make_pipeline):
    p: Pipeline = make_pipeline(budget=10)
    for i in range(4):
        p.upload(f"incoming/cup-{i}.png", metadata={"backdrop-number-of-images": "2"})  # 4 credits each
    p.drain()
    statuses = sorted(j["status"] for j in p.jobs().values())
    assert statuses == ["rejected", "rejected", "succeeded", "succeeded"]
    assert {j["reason"] for j in p.jobs().values() if j["status"] == "rejected"} == {"budget_exhausted"}
    total = usage(p)
    assert total["credits_used"] == Decimal(8) and total["committed"] <= 10
    alerts = [n["attributes"]["alert"] for n in p.stack.notifications() if n["attributes"]["kind"] == "alert"]
    assert sorted(alerts) == ["budget_exhausted", "budget_threshold"]  # 80% crossed once; exhausted said once
    assert len(p.scene_calls(200)) == 2
