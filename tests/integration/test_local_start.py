"""`backdrop local start`: the local stack with template parameters, started as a person starts it (a background
job), found by name by the other commands exactly as a deployed stack is (photo, usage, estimate, backfill,
webhook ping, replay), and stopped by SIGTERM with its moto server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from backdrop_kit import cli

from .conftest import CUP, VASE
from .test_stopping import READY_DEADLINE, Command, assert_all_gone, moto_servers, start  # noqa: F401
from .test_webhook import HEADER, Receiver, receiver  # noqa: F401


def backdrop(capsys, *argv: str) -> tuple[int, Any]:
    """A command against the running stack, in this process (its environment points at the stack's endpoint)."""
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith(("{", "[")) else out


def eventually(what: str, check: Callable[[], Any]) -> Any:
    """What `check` returns once it is truthy; bounded by the suite's readiness deadline, looked at every 0.2 s."""
    deadline = time.monotonic() + READY_DEADLINE
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {READY_DEADLINE:.0f}s"
        time.sleep(0.2)
    return found


def test_a_started_stack_serves_every_command_until_stopped(
    start: Callable[..., Command],  # noqa: F811
    receiver: Receiver,  # noqa: F811
    capsys,
    monkeypatch,
):
    stack = start(
        "local",
        "start",
        "--json",
        "--param",
        f"WebhookUrl={receiver.url}",
        "--param",
        "WebhookStatuses=succeeded,rejected",
        "--param",
        "MonthlyCreditBudget=8",
    )
    ready = json.loads(stack.wait_for("{"))
    children = stack.descendants()
    assert moto_servers(children)
    assert ready["stack"] == "backdrop-local" and ready["parameters"]["MonthlyCreditBudget"] == "8"
    for name, value in ready["environment"].items():  # what a person exports in another shell
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    bucket = ready["outputs"]["UploadsBucketName"]
    s3 = boto3.client("s3")
    for key, body in (("incoming/a.png", CUP), ("incoming/b.png", VASE)):  # 8 credits each: one fits the budget
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")

    def story(key: str) -> dict:
        code, told = backdrop(capsys, "photo", key, "--stack", "backdrop-local", "--json")
        assert code == 0
        return told

    def told_once_recorded(key: str) -> dict | None:
        told = story(key)
        [version] = told["versions"]
        return told if version["outcome"] or version["refusals"] else None

    a, b = (
        eventually(f"a record of {key}", lambda key=key: told_once_recorded(key))
        for key in ("incoming/a.png", "incoming/b.png")
    )
    outcomes = sorted((t["versions"][0]["outcome"] or {}).get("status", "refused") for t in (a, b))
    assert outcomes == ["refused", "succeeded"]
    refused = next(t for t in (a, b) if not t["versions"][0]["outcome"])
    [refusal] = refused["versions"][0]["refusals"]
    assert (refusal["reason"], refusal["final"]) == ("budget_exhausted", False)

    # The webhook: both outcomes, then a ping through the same path with the same header.
    eventually("two recorded outcomes at the webhook", lambda: len(receiver.requests) >= 2)
    code, pinged = backdrop(capsys, "webhook", "ping", "--stack", "backdrop-local", "--wait", "1")
    assert code == 0 and pinged["dead_lettered"] is None and pinged["endpoint"] == receiver.url
    ping = eventually(
        "the ping at the webhook",
        lambda: next((r for r in receiver.requests if r["body"]["detail-type"] == "Webhook Ping"), None),
    )
    assert ping["body"]["detail"]["ping_id"] == pinged["ping_id"]
    assert ping["headers"][HEADER] == ready["webhook"]["secret"]

    code, usage = backdrop(capsys, "usage", "--stack", "backdrop-local", "--by", "status", "--json")
    assert code == 0 and {r["status"]: r["jobs"] for r in usage["rows"]} == {"succeeded": 1, "failed": 0, "rejected": 1}
    code, estimate = backdrop(capsys, "estimate", f"s3://{bucket}/incoming/", "--stack", "backdrop-local", "--json")
    assert code == 0 and (estimate["to_process"], estimate["skipped"]) == (1, {"already_processed": 1})
    code, backfill = backdrop(capsys, "backfill", f"s3://{bucket}/incoming/", "--stack", "backdrop-local", "--json")
    assert code == 1 and (backfill["budget_left"], backfill["sent"]) == (0, 0)  # the budget is spent: refused whole

    # A storefront that refuses (a 4xx other than 429 is not retried): the recorded rejection lands in the webhook
    # DLQ at once; replayed once the storefront takes it.
    receiver.status = 400
    s3.put_object(Bucket=bucket, Key="incoming/notes.txt", Body=b"not a photo", ContentType="text/plain")
    sqs, dlq = boto3.client("sqs"), ready["outputs"]["WebhookDLQUrl"]

    def dead_letters() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    eventually("the rejection in the webhook DLQ", lambda: dead_letters() == 1)
    receiver.status = 200
    refused_at_first = [
        r for r in receiver.requests if r["body"]["detail"].get("source", {}).get("key") == "incoming/notes.txt"
    ]
    code, replay = backdrop(capsys, "replay", "WebhookDLQ", "--stack", "backdrop-local")
    assert code == 0 and (replay["to"], replay["moved"], replay["kept"]) == ({"bus": "backdrop-local"}, 1, [])
    replayed = eventually(
        "the replayed rejection at the webhook",
        lambda: [
            r for r in receiver.requests if r["body"]["detail"].get("source", {}).get("key") == "incoming/notes.txt"
        ][len(refused_at_first) :],
    )
    assert replayed[0]["body"]["detail"] == refused_at_first[0]["body"]["detail"]  # the detail as it was
    assert replayed[0]["body"]["id"] != refused_at_first[0]["body"]["id"]  # a new envelope id: dedupe on the detail
    assert dead_letters() == 0

    assert stack.stop(signal.SIGTERM) == 0, stack.errors()
    assert "local stack stopped" in stack.errors()
    assert_all_gone(children)


pytestmark = pytest.mark.skipif(not os.path.isfile("/proc/self/stat"), reason="process trees are read from /proc")
