"""`backdrop usage` and `backdrop redrive` against a stack (the local one here: same AWS APIs)."""

from __future__ import annotations

import json

import pytest
from backdrop_kit.cli import main
from backdrop_kit.usage import BUDGET_COLOUR, PALETTE
from PIL import Image

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


def test_usage_by_day_profile_and_status_from_the_stack_name(make_pipeline, capsys, tmp_path):
    pipeline = make_pipeline(budget=100)
    pipeline.stack.put_profile("summer", {"number_of_images": 1})
    pipeline.upload("incoming/summer/cup.png")  # 2 credits
    pipeline.upload("incoming/plain.png")  # 8 credits
    pipeline.upload("incoming/notes.txt", b"not a photo", content_type="text/plain")
    pipeline.drain()
    stack = pipeline.stack.publish()
    capsys.readouterr()  # the handlers' log lines

    def rows(by: str) -> list[dict]:
        assert main(["usage", "--stack", stack, "--by", by, "--json"]) == 0
        return json.loads(capsys.readouterr().out)["rows"]

    [today] = rows("day")
    assert (today["credits"], today["images"], today["profiles"]) == (10, 5, {"-": 8, "summer": 2})
    by_profile = {r["profile"]: r for r in rows("profile")}
    assert by_profile["summer"]["credits"] == 2 and by_profile["-"]["rejected"] == 1
    assert {r["status"]: r["jobs"] for r in rows("status")} == {"succeeded": 2, "failed": 0, "rejected": 1}
    assert main(["usage", "--stack", stack, "--by", "profile"]) == 0
    assert "summer" in capsys.readouterr().out.splitlines()[-1]

    chart = tmp_path / "usage.png"
    assert main(["usage", "--stack", stack, "--chart", str(chart)]) == 0
    picture = Image.open(chart).convert("RGB")
    colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 16)}
    # One colour per profile in the bars, and the budget's line (100 credits this month).
    assert {PALETTE[0], PALETTE[1], BUDGET_COLOUR} <= colours


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["usage", "--table", "t", "--month", "2026-13"], "'2026-13' is not a month"),
        (["usage", "--table", "t", "--month", "November"], "is not a month"),
        (["usage", "--stack", "no-such-stack"], "no stack named 'no-such-stack'"),
    ],
)
def test_usage_refuses_bad_arguments_plainly(pipeline: Pipeline, capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
