"""`backdrop local invoke`: one handler from template.yaml with a sample event, against a fresh local stack."""

from __future__ import annotations

import json
from pathlib import Path

from backdrop_kit.cli import main
from backdrop_kit.local_invoke import local_invoke

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_processor_with_a_batch():
    report = local_invoke("ProcessorFunction", load("sqs-s3-batch.json"))
    assert report["error"] is None
    assert report["result"] == {"batchItemFailures": []}
    kinds = sorted(
        (e["detail-type"], e["detail"].get("problem") and e["detail"]["problem"]["code"])
        for e in report["events_on_bus"]
    )
    assert kinds == [("Generation Rejected", "unknown_profile"), ("Generation Succeeded", None)]
    assert len(report["objects_written"]) == 4  # the default: 4 variants of the one photo that was work


def test_processor_with_a_malformed_message_reports_a_batch_item_failure():
    report = local_invoke("ProcessorFunction", load("sqs-malformed.json"))
    [failure] = report["result"]["batchItemFailures"]
    assert failure["itemIdentifier"] == load("sqs-malformed.json")["Records"][0]["messageId"]
    assert report["events_on_bus"] == []


def test_recorder_with_a_rejection(capsys):
    code = main(
        ["local", "invoke", "RecorderFunction", "--event", str(EVENTS / "eventbridge-generation-rejected.json")]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["result"]["recorded"] is True
    [record] = report["records"]
    assert record["status"] == "rejected" and record["reason"] == "not_an_image"
    [note] = report["notifications"]
    assert note["attributes"]["reason"] == "not_an_image"


def test_publisher_with_a_command_for_a_job_this_stack_never_made():
    report = local_invoke("PublisherFunction", load("eventbridge-select-variants.json"))
    assert report["error"] is None
    assert report["result"] == {"published": False, "rejected": "unknown_job"}
    [event] = report["events_on_bus"]
    assert event["detail-type"] == "Selection Rejected" and event["detail"]["reason"] == "unknown_job"
    assert event["detail"]["actor"] == "storefront (merchant dashboard)"


def test_unknown_function_and_missing_file_are_clear_errors(capsys, tmp_path):
    assert main(["local", "invoke", "NopeFunction", "--event", str(EVENTS / "sqs-s3-put.json")]) == 2
    assert "no function 'NopeFunction'" in capsys.readouterr().err
    assert main(["local", "invoke", "ProcessorFunction", "--event", str(tmp_path / "none.json")]) == 2
    assert "no such event file" in capsys.readouterr().err
