"""`--json` prints one JSON document and nothing else, whatever path the handlers take: a script reads stdout with
`jq` and a person reads stderr, and neither gets a Powertools metrics document or its "no metrics" warning. Run as
a person runs the kit (a process of its own), with metrics turned on in the caller's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Pipeline

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PHOTO = ROOT / "kit" / "backdrop_kit" / "samples" / "espresso-cup.png"
# What a metrics document (EMF) or Powertools' warning about an invocation without metrics would show.
METRICS_OUTPUT = ('"_aws"', "CloudWatchMetrics", "No application metrics to publish")


def backdrop_json(*args: str, env: dict[str, str] | None = None) -> Any:
    """Runs the CLI with metrics on in the caller's environment; returns the one JSON document it printed."""
    caller = {**os.environ, **(env or {}), "POWERTOOLS_METRICS_DISABLED": "false", "POWERTOOLS_DEV": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "backdrop_kit.cli", *args],
        capture_output=True,
        text=True,
        env=caller,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for shown in METRICS_OUTPUT:
        assert shown not in done.stdout and shown not in done.stderr, (shown, done.stdout, done.stderr)
    return json.loads(done.stdout)  # one document: anything before or after it is an error here


@pytest.mark.parametrize(
    ("function_id", "event"),
    [
        ("ProcessorFunction", "sqs-s3-test-event.json"),  # adds no metric: Powertools warns
        ("ProcessorFunction", "sqs-s3-put.json"),  # a Claid call and its metrics
        ("RecorderFunction", "eventbridge-generation-succeeded.json"),  # a record and its metrics
    ],
)
def test_local_invoke_prints_only_its_report(function_id: str, event: str) -> None:
    report = backdrop_json("local", "invoke", function_id, "--event", str(EVENTS / event))
    assert report["function"] == function_id and report["error"] is None


def test_demo_prints_only_its_report(tmp_path: Path) -> None:
    # Two copies of one photo, and the recorder sees each job's events: paths with metrics and without.
    args = ("demo", str(PHOTO), "--copies", "2", "--images", "1", "--publish", "first", "--out", str(tmp_path))
    report = backdrop_json(*args, "--json", "--quiet")
    assert [job["status"] for job in report["jobs"]] == ["succeeded", "succeeded"]


def test_the_commands_that_read_a_stack_print_only_their_answer(pipeline: Pipeline) -> None:
    pipeline.upload("incoming/cup.png")
    pipeline.drain()
    stack = pipeline.stack.publish()
    reach = pipeline.stack.endpoints()
    bucket = pipeline.bucket
    told = backdrop_json("photo", "incoming/cup.png", "--stack", stack, "--json", env=reach)
    assert told["versions"]
    usage = backdrop_json("usage", "--stack", stack, "--by", "status", "--json", env=reach)
    assert usage["rows"]
    estimate = backdrop_json("estimate", f"s3://{bucket}/incoming/", "--stack", stack, "--json", env=reach)
    assert estimate
