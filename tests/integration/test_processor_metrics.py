"""The processor's metrics from a real batch (records side by side in worker threads), read from its EMF output."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Metrics
from backdrop_kit.runner import sqs_event
from backdrop_kit.stack import ACCOUNT, REGION

from .conftest import Pipeline


def _emf(out: str) -> list[dict[str, Any]]:
    return [d for d in (json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')) if "_aws" in d]


def _total(documents: list[dict[str, Any]], name: str, **dimensions: str) -> float:
    total = 0.0
    for d in documents:
        if name in d and all(d.get(k) == v for k, v in dimensions.items()):
            values = d[name] if isinstance(d[name], list) else [d[name]]
            total += sum(values)
    return total


def test_a_batch_reports_claid_calls_latency_rejections_and_credits(make_pipeline, capsys, monkeypatch):
    p: Pipeline = make_pipeline()
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    p.upload("incoming/vase.png", metadata={"backdrop-number-of-images": "2"})
    p.upload("incoming/notes.png", b"not an image")
    queue = p.stack.queue_url("JobsQueue")
    messages: list[dict[str, Any]] = []
    while len(messages) < 3:
        answer = p.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages += [m for m in answer.get("Messages", []) if "s3:TestEvent" not in m["Body"]]
    # The local stack turns EMF output off; Powertools reads the switch when it flushes.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    Metrics().clear_metrics()  # one shared set per process: disabled flushes by earlier tests leave it full
    capsys.readouterr()
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[-1]}"
    p.runner.invoke("ProcessorFunction", sqs_event(messages, queue_arn))
    documents = _emf(capsys.readouterr().out)

    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Backdrop" for d in documents)
    assert _total(documents, "ClaidCalls", Status="200", service="backdrop") == 2
    assert _total(documents, "Uploads", Status="succeeded") == 2
    assert _total(documents, "UploadsRejected", Reason="not_an_image") == 1
    assert _total(documents, "CreditsReserved") == 6
    assert _total(documents, "CreditsReleased") == 0
    latency = [d for d in documents if "ClaidLatency" in d]
    units = {m["Name"]: m["Unit"] for m in latency[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["ClaidLatency"] == "Milliseconds"
    assert len(latency[0]["ClaidLatency"]) == 2  # both calls, gathered from two threads into one document
