"""`backdrop usage` and `backdrop redrive` against a stack (the local one here: same AWS APIs)."""

from __future__ import annotations

import json

from backdrop_kit.cli import main

from .conftest import Pipeline


def test_usage_reports_the_months_credits(pipeline: Pipeline, capsys):
    pipeline.stack.put_profile("summer", {"number_of_images": 1})
    pipeline.upload("incoming/summer/cup.png")
    pipeline.drain()
    assert main(["usage", "--table", pipeline.stack.app_table]) == 0
    usage = json.loads(capsys.readouterr().out)
    assert usage["total"]["credits_used"] == 2 and usage["profiles"]["summer"]["images"] == 1


def test_redrive_moves_dead_letters_back(pipeline: Pipeline, capsys):
    dlq, queue = pipeline.stack.queue_url("JobsDLQ"), pipeline.stack.queue_url("JobsQueue")
    for i in range(3):
        pipeline.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": i}))
    assert main(["redrive", "--dlq-url", dlq, "--queue-url", queue, "--limit", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == {"moved": 2}
    assert pipeline.queue_depth("JobsDLQ") == 1
    bodies = []
    while True:
        messages = pipeline.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        bodies += [m["Body"] for m in messages]
        for m in messages:
            pipeline.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    moved = [b for b in bodies if b.startswith('{"n"')]
    assert len(moved) == len(set(moved)) == 2  # each moved once, none lost (the third is still in the DLQ)
