"""A refusal that a change of settings or budget can lift is not a verdict (DESIGN invariant 7): photos refused
for a misconfigured connector or a spent budget are processed, and charged once, when sent again after the
change; a backfill's budget check counts what is already queued, so backfills never promise more than the
budget holds. The issue-21 scenario on the local stack, end to end through the CLI."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from backdrop.jobs import current_month, version_job_id
from backdrop.store.items import as_attributes, from_attributes
from backdrop.store.ledger import DynamoLedger
from backdrop_kit.cli import main
from backdrop_kit.runner import Runner

from .conftest import VASE, Pipeline

TWO_IMAGES = {"backdrop-number-of-images": "2"}  # 4 credits a photo


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--quiet", "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def usage(p: Pipeline) -> dict:
    return DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())["total"]


def change(p: Pipeline, **parameters: str) -> None:
    """A stack update of the functions' configuration: the next invocations are cold starts that read it."""
    p.stack.update_parameters(parameters)
    p.runner = Runner(p.stack, processor_workers=2)


def records_by_key(p: Pipeline) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for item in p.stack.job_items():
        found.setdefault(item["source_key"], []).append(item)
    return found


def latest_job(p: Pipeline, key: str) -> str:
    raw = p.stack.client("dynamodb").get_item(
        TableName=p.stack.app_table, Key=as_attributes({"pk": f"SOURCE#{p.bucket}/{key}", "sk": "LATEST"})
    )["Item"]
    return str(from_attributes(raw)["job_id"])


def test_refused_photos_are_processed_when_sent_again_and_backfills_never_overpromise(make_pipeline, capsys):
    # A connector path that does not cover the generated prefix (the issue's `--path incoming/`), and a budget of 10.
    p: Pipeline = make_pipeline(budget=10, parameters={"ClaidStoragePrefix": "incoming/"}, workers=2)
    stack = p.stack.publish()
    source = f"s3://{p.bucket}/incoming/"

    # 1. Misconfigured: each upload is recorded failed with the reason and an event, nothing retried or held.
    for name in ("a", "b", "c"):
        p.upload(f"incoming/{name}.png", VASE, metadata=TWO_IMAGES)
    p.drain()
    assert p.queue_depth("JobsDLQ") == 0 and p.scene_calls() == []
    failed = [e["detail"] for e in p.stack.bus_events() if e["detail-type"] == "Generation Failed"]
    assert sorted(d["source"]["key"] for d in failed) == ["incoming/a.png", "incoming/b.png", "incoming/c.png"]
    assert {(d["problem"]["code"], d["final"]) for d in failed} == {("bad_configuration", False)}
    assert "outside the Claid connector's prefix" in failed[0]["problem"]["message"]
    assert usage(p)["committed"] == 0

    # 2. Fixed. New uploads go through until the budget is spent: one of three (4 credits each) is refused.
    change(p, ClaidStoragePrefix="")
    for name in ("d", "e", "f"):
        p.upload(f"incoming/{name}.png", VASE, metadata=TWO_IMAGES)
    p.drain()
    records = records_by_key(p)
    statuses = Counter(
        (r["status"], r.get("reason")) for key in ("d", "e", "f") for r in records[f"incoming/{key}.png"]
    )
    assert statuses == {("succeeded", None): 2, ("rejected", "budget_exhausted"): 1}

    # 3. Every refused photo is still to process: a refusal is no verdict.
    code, report = run(capsys, "estimate", source, "--stack", stack)
    assert (code, report["to_process"], report["credits"]) == (0, 4, 16)
    assert report["skipped"] == {"already_processed": 2}

    # 4. The budget holds 2 more credits: the backfill is refused whole, before anything is sent.
    code, report = run(capsys, "backfill", source, "--stack", stack)
    assert (code, report["budget_left"], report["sent"]) == (1, 2, 0)
    assert p.queue_depth("JobsQueue") == 0

    # 5. Budget 20: a backfill reserves what it queues, so the next one sees 4 credits left, not 12.
    change(p, MonthlyCreditBudget="20")
    code, report = run(capsys, "backfill", source, "--stack", stack, "--limit", "2")
    assert (code, report["budget_left"], report["sent"]) == (0, 12, 2)
    queued = [
        m["Body"]
        for m in p.sqs.receive_message(
            QueueUrl=p.stack.queue_url("JobsQueue"), VisibilityTimeout=0, MaxNumberOfMessages=10
        )["Messages"]
    ]
    code, report = run(capsys, "backfill", source, "--stack", stack)
    assert (code, report["budget_left"], report["to_process"], report["sent"]) == (1, 4, 2, 0)
    assert report["skipped"]["in_flight"] == 2  # queued by the first backfill: not queued twice
    code, report = run(capsys, "backfill", source, "--stack", stack, "--limit", "1")
    assert (code, report["sent"]) == (0, 1)
    total = usage(p)
    assert total["committed"] == 20 and total["credits_reserved"] == 12  # promised exactly what the budget holds
    p.drain()
    assert len(p.scene_calls(200)) == 5 and usage(p)["credits_reserved"] == 0

    # 6. Budget 100: the last refused photo goes through too.
    change(p, MonthlyCreditBudget="100")
    code, report = run(capsys, "backfill", source, "--stack", stack)
    assert (code, report["sent"], report["skipped"]["already_processed"]) == (0, 1, 5)
    p.drain()

    # Each photo: one outcome, succeeded, charged once; its refusals kept beside it, not in its way.
    calls = p.scene_calls(200)
    assert len(calls) == 6 and max(Counter(c.destination for c in calls).values()) == 1
    for key, records in records_by_key(p).items():
        [outcome] = [r for r in records if r["final"]]
        assert outcome["status"] == "succeeded" and outcome["credits"] == 4
        assert all(r["status"] != "succeeded" for r in records if not r["final"])
        version = p.s3.head_object(Bucket=p.bucket, Key=key)["VersionId"]
        assert outcome["job_id"] == version_job_id(p.bucket, key, version) == latest_job(p, key)
    refusals = Counter(r["reason"] for records in records_by_key(p).values() for r in records if not r["final"])
    assert refusals == {"bad_configuration": 3, "budget_exhausted": 1}
    total = usage(p)
    assert total["credits_used"] == total["committed"] == Decimal(24) and total["credits_reserved"] == 0

    # Sent again once more, by the same messages or another backfill: nothing is paid twice.
    for body in queued:
        p.sqs.send_message(QueueUrl=p.stack.queue_url("JobsQueue"), MessageBody=body)
    p.drain()
    code, report = run(capsys, "backfill", source, "--stack", stack)
    assert (code, report["sent"], report["skipped"]) == (0, 0, {"already_processed": 6})
    assert len(p.scene_calls(200)) == 6 and usage(p)["credits_used"] == 24
