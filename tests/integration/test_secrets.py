"""No secret leaves through what backdrop writes: a local run of every kind of outcome, with every log line, bus
event, DynamoDB item, notification and dead letter captured, holds neither the Claid API key, nor a presigned
URL's signature, nor the storage connector's secret key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from backdrop_kit.cli import main
from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.runner import sqs_event
from backdrop_kit.stack import ACCOUNT, LOCAL_API_KEY, REGION
from boto3.dynamodb.types import TypeDeserializer

from .conftest import Pipeline

CONNECTOR_SECRET = "connector-secret-9f2c1e"
NEEDLES = (LOCAL_API_KEY, "X-Amz-Signature", "Signature=", "X-Amz-Credential", CONNECTOR_SECRET)


def _everything_written(p: Pipeline) -> list[Any]:
    """What a storefront, an operator or an attacker with read access could see of this stack."""
    ddb, de = p.stack.client("dynamodb"), TypeDeserializer()
    items = []
    for table in (p.stack.physical["AppTable"], p.stack.physical["IdempotencyTable"]):
        for raw in ddb.scan(TableName=table, ConsistentRead=True).get("Items", []):
            items.append({k: de.deserialize(v) for k, v in raw.items()})
    dead = [
        m["Body"]
        for dlq in ("JobsDLQ", "RecorderDLQ")
        for m in p.sqs.receive_message(QueueUrl=p.stack.queue_url(dlq), MaxNumberOfMessages=10).get("Messages", [])
    ]
    return [items, p.stack.bus_events(), p.stack.notifications(), dead]


def _invoke_processor_once(p: Pipeline) -> None:
    queue = p.stack.queue_url("JobsQueue")
    messages: list[dict[str, Any]] = []
    while not messages:
        answer = p.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages = [m for m in answer.get("Messages", []) if "s3:TestEvent" not in m["Body"]]
    p.runner.invoke(
        "ProcessorFunction", sqs_event(messages, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[-1]}")
    )


@pytest.mark.slow
def test_no_secret_in_any_log_event_record_or_notification(make_pipeline, capfd, caplog, monkeypatch):
    def make(*args: Any, **kwargs: Any) -> Pipeline:
        started = make_pipeline(*args, **kwargs)
        monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)  # a stack turns EMF off; they are output too
        return started

    caplog.set_level("DEBUG", logger="backdrop")  # our own log lines at their most talkative
    written: list[Any] = []

    # Connected storage, a budget that runs out, transient 5xx/429, rejections, and a key that needs a
    # presigned URL (a space in it) so Claid is sent a signature.
    p = make(budget=6, emulator=EmulatorConfig(fault_rate=0.4, fault_kinds=("500", "429"), seed=5))
    one = {"backdrop-number-of-images": "1"}
    # The key with a space goes first and alone: which upload the budget refuses depends on the order
    # concurrent records are handled in, and this one must be sent to Claid.
    p.upload("incoming/with space.png", metadata=one)
    p.drain()
    for key in ("incoming/cup.png", "incoming/vase.png", "incoming/late.png"):
        p.upload(key, metadata=one)
    p.upload("incoming/notes.png", b"not an image")
    p.upload("incoming/many.png", metadata={"backdrop-number-of-images": "9"})
    p.drain()
    sent = json.loads(p.jobs()["incoming/with space.png"]["detail"])["claid"]
    assert sent["input"] == "presigned_url", "no presigned URL was sent to Claid"
    written += _everything_written(p)

    # Claid refuses the key (401) / has no credits (402) / never answers; temporary-bucket mode.
    refused = make(emulator=EmulatorConfig(api_keys=frozenset({"another-key"})))
    refused.upload("incoming/cup.png", metadata=one)
    refused.drain()
    written += _everything_written(refused)
    broke = make(emulator=EmulatorConfig(credits=0))
    broke.upload("incoming/cup.png", metadata=one)
    _invoke_processor_once(broke)
    written += _everything_written(broke)
    silent = make(
        parameters={"ClaidUnknownOutcomeSettleSeconds": "2"},
        emulator=EmulatorConfig(fault_rate=1.0, fault_kinds=("drop",)),
    )
    silent.upload("incoming/cup.png", metadata=one)
    silent.drain()
    written += _everything_written(silent)
    temporary = make("temporary")
    temporary.upload("incoming/with space.png", metadata=one)
    temporary.drain()
    written += _everything_written(temporary)

    # Registering the bucket with Claid: its secrets come from the environment and go nowhere else.
    monkeypatch.setenv("CLAID_API_KEY", LOCAL_API_KEY)
    monkeypatch.setenv("CLAID_CONNECTOR_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("CLAID_CONNECTOR_SECRET_ACCESS_KEY", CONNECTOR_SECRET)
    base = temporary.stack.emulator.base_url
    assert main(["connect-storage", "--name", "shop", "--bucket", "shop-uploads", "--claid-url", base]) == 0
    assert main(["connect-storage", "--name", "shop", "--bucket", "shop-uploads", "--claid-url", base]) == 1

    out = capfd.readouterr()
    haystack = "\n".join([out.out, out.err, caplog.text, json.dumps(written, default=str)])
    # The run covered what it claims to (so a missing needle means something).
    for outcome in (
        '"succeeded"',
        "budget_exhausted",
        "budget_threshold",
        "not_an_image",
        "claid_auth",
        "claid_out_of_credits",
        "claid_outcome_unknown",
        '"_aws"',
        "generation outcome",
    ):
        assert outcome in haystack, f"the run produced no {outcome}"
    for needle in NEEDLES:
        assert needle not in haystack, f"{needle!r} leaked: …{haystack[max(0, haystack.find(needle) - 200) :][:400]}…"
