"""Upload -> processor -> Claid emulator -> bus -> recorder -> DynamoDB / S3 / SNS, all over real HTTP."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from backdrop.jobs import current_month
from backdrop.store.ledger import DynamoLedger

from .conftest import VASE, Pipeline


def ledger_total(p: Pipeline) -> dict:
    return DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())["total"]


def test_connected_storage_upload_becomes_variants_record_and_notification(pipeline: Pipeline):
    version = pipeline.upload("incoming/espresso-cup.png", metadata={"backdrop-number-of-images": "2"})["VersionId"]
    pipeline.drain()

    job = pipeline.jobs()["incoming/espresso-cup.png"]
    assert job["status"] == "succeeded"
    assert job["images"] == 2 and job["credits"] == Decimal(4)
    detail = json.loads(job["detail"])
    # Claid reads the version that was checked (a storage:// URI cannot name one) and writes through the connector.
    assert detail["claid"]["input"] == "presigned_url"
    [call] = pipeline.scene_calls(200)
    assert call.body is not None
    image_url = urlsplit(call.body["object"]["image_url"])
    assert parse_qs(image_url.query)["versionId"] == [version] == [detail["source"]["version_id"]]
    assert detail["claid"]["destination"] == f"storage://backdrop-local/generated/espresso-cup/{job['job_id']}/"
    keys = pipeline.generated()
    assert len(keys) == 2 and all(k.startswith(f"generated/espresso-cup/{job['job_id']}/") for k in keys)
    for key in keys:
        img = pipeline.image(key)
        assert (img.format, img.size) == ("JPEG", (1024, 1024))

    total = ledger_total(pipeline)
    assert total["credits_used"] == Decimal(4) and total["images"] == 2 and total["jobs_succeeded"] == 1
    assert total["credits_reserved"] == 0 and total["committed"] == Decimal(4)

    [note] = pipeline.stack.notifications()
    assert note["attributes"] == {"kind": "generation", "status": "succeeded", "profile": "-"}
    assert note["message"]["credits"] == 4.0
    kinds = sorted(e["detail-type"] for e in pipeline.stack.bus_events())
    assert kinds == ["Generation Recorded", "Generation Succeeded"]
    assert len(pipeline.scene_calls(200)) == 1


def test_temporary_bucket_images_are_copied_into_generated(make_pipeline):
    p = make_pipeline("temporary")
    p.upload("incoming/vase.png", VASE, metadata={"backdrop-number-of-images": "3", "backdrop-output-format": "webp"})
    p.drain()

    job = p.jobs()["incoming/vase.png"]
    assert job["status"] == "succeeded" and job["images"] == 3
    detail = json.loads(job["detail"])
    assert detail["claid"]["destination"] is None
    keys = p.generated()
    assert keys == [f"generated/vase/{job['job_id']}/variant-{i}.webp" for i in (1, 2, 3)]
    assert all(p.image(k).format == "WEBP" for k in keys)
    assert all(o["key"] for o in detail["outputs"])


def test_key_with_spaces_plus_unicode_and_parentheses(pipeline: Pipeline):
    key = "incoming/Summer Sale (2026)+ Café ☕.png"
    pipeline.upload(key, metadata={"backdrop-number-of-images": "1"})
    pipeline.drain()

    job = pipeline.jobs()[key]
    assert job["status"] == "succeeded" and job["images"] == 1
    detail = json.loads(job["detail"])
    assert detail["claid"]["input"] == "presigned_url"  # not expressible as a storage:// URI
    assert detail["source"]["key"] == key
    [out] = pipeline.generated()
    assert out.startswith("generated/Summer-Sale-2026-Caf/")


def test_profile_from_key_prefix_and_ssm(pipeline: Pipeline):
    pipeline.stack.put_profile(
        "summer",
        {
            "number_of_images": 1,
            "output_format": "png",
            "aspect_ratio": "16:9",
            "prompt": "on warm sand at golden hour",
        },
    )
    pipeline.upload("incoming/summer/cup.png")
    pipeline.drain()

    job = pipeline.jobs()["incoming/summer/cup.png"]
    assert job["status"] == "succeeded" and job["profile"] == "summer" and job["images"] == 1
    [key] = pipeline.generated()
    img = pipeline.image(key)
    assert img.format == "PNG" and img.width > img.height
    [note] = pipeline.stack.notifications()
    assert note["attributes"]["profile"] == "summer"
    usage = DynamoLedger(pipeline.stack.client("dynamodb"), pipeline.stack.app_table).month_usage(current_month())
    assert usage["profiles"]["summer"]["credits_used"] == Decimal(2)


def test_nothing_the_pipeline_writes_triggers_it_again(pipeline: Pipeline):
    pipeline.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    pipeline.drain()
    # The emulator wrote under generated/; a photo put there by hand is not work either.
    pipeline.upload("generated/manual/cup.png")
    pipeline.drain()
    assert len(pipeline.scene_calls()) == 1
    assert list(pipeline.jobs()) == ["incoming/cup.png"]


def test_recorder_emits_metrics_once_per_job(pipeline: Pipeline, capsys, monkeypatch):
    from pathlib import Path

    event = json.loads(
        (Path(__file__).resolve().parents[2] / "events/eventbridge-generation-rejected.json").read_text()
    )
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # Powertools keeps metrics in a store shared by every Metrics object in the process, and with metrics
    # disabled (the local default) it never flushes it: start from empty, as a fresh Lambda process does.
    pipeline.runner.function("RecorderFunction").module.metrics.clear_metrics()
    capsys.readouterr()
    pipeline.runner.invoke("RecorderFunction", event)
    pipeline.runner.invoke("RecorderFunction", event)  # a redelivery: recorded once, counted once
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [m for m in emf if "JobsRejected" in m]
    [metrics] = counted
    assert (metrics["JobsRejected"], metrics["CreditsUsed"], metrics["ImagesGenerated"]) == ([1.0], [0.0], [0.0])
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Backdrop"


def test_template_profile_under_the_stack_default_ratio_is_sent_with_a_note(pipeline: Pipeline):
    """The stack-wide DefaultAspectRatio cannot go with a template: left out and noted, never sent; the same
    ratio given by the merchant on the upload is refused, and Claid is never called for it."""
    pipeline.stack.put_profile(
        "kitchen",
        {"template_url": "https://example.com/templates/kitchen.png", "view": "front", "number_of_images": 1},
    )
    pipeline.upload("incoming/kitchen/cup.png")
    pipeline.upload("incoming/kitchen/vase.png", body=VASE, metadata={"backdrop-aspect-ratio": "16:9"})
    pipeline.drain()

    jobs = pipeline.jobs()
    ok, refused = jobs["incoming/kitchen/cup.png"], jobs["incoming/kitchen/vase.png"]
    assert ok["status"] == "succeeded"
    [note] = json.loads(ok["detail"])["notes"]
    assert (note["field"], note["source"]) == ("aspect_ratio", "defaults")
    assert "template scene takes no aspect_ratio" in note["reason"]
    [call] = pipeline.scene_calls()
    assert call.body is not None and "aspect_ratio" not in call.body["scene"]
    assert call.body["scene"]["view"] == "front"
    assert refused["status"] == "rejected" and refused["reason"] == "bad_settings"
    assert "aspect_ratio (object metadata): a template scene takes no aspect_ratio" in refused["detail"]
