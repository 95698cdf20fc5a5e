"""`backdrop estimate` and `backdrop backfill` against the local stack, found by name like a deployed one."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from backdrop_kit.cli import main

from .conftest import CUP, VASE, Pipeline

PNG_HEADER = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56  # enough for the processor's 64-byte sniff


@pytest.fixture
def catalogue(make_pipeline) -> Pipeline:
    """A shop's existing photos, there before the stack watched the bucket: one already processed."""
    pipeline = make_pipeline(budget=0, parameters={"MaxUploadBytes": "100000", "RenditionEditCredits": "1.5"})
    pipeline.stack.put_profile("summer", {"number_of_images": 1})
    pipeline.upload("incoming/summer/done.png", VASE)
    pipeline.drain()
    assert len(pipeline.scene_calls(200)) == 1
    pipeline.upload("incoming/summer/vase.png", VASE)  # 1 image: 2 credits
    pipeline.upload("incoming/plain.png", VASE)  # the default 4 images: 8 credits
    # 4 credits, then (once a person publishes one) a 2048 px rendition, upscaled, and an 800 px one.
    meta = {"backdrop-number-of-images": "2", "backdrop-publish": "review", "backdrop-renditions": "2048 webp, 800"}
    pipeline.upload("incoming/meta.png", VASE, metadata=meta)
    pipeline.upload("incoming/notes.txt", b"not a photo", content_type="text/plain")
    pipeline.upload("incoming/big.png", CUP)  # over MaxUploadBytes
    pipeline.upload("generated/old/x.png", VASE)  # the pipeline's own output is never work
    pipeline.sqs.purge_queue(QueueUrl=pipeline.stack.queue_url("JobsQueue"))
    pipeline.stack.publish()
    return pipeline


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--quiet", "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_estimate_plans_each_photo_as_the_processor_would(catalogue: Pipeline, capsys):
    code, report = run(capsys, "estimate", f"s3://{catalogue.bucket}/", "--stack", "backdrop-local")
    assert code == 0
    assert report["listed"] == 8 and report["to_process"] == 3  # 8: the processed photo's variant too
    assert report["images"] == 1 + 4 + 2 and report["credits"] == 14
    # Renditions at the stack's prices (an edit 1.5 here, an upscaled edit the default 2), told apart.
    assert report["renditions"] == {
        "edits": 2,
        "upscaled": 1,
        "credits": 3.5,
        "credits_per_edit": 1.5,
        "credits_per_upscaled_edit": 2.0,
    }
    assert report["skipped"] == {
        "already_processed": 1,
        "not_an_image": 1,
        "too_large": 1,
        "outside_incoming_prefix": 2,
    }
    assert report["profiles"] == {"-": 2, "summer": 1}
    # 3 calls at min(4/s, 120/min) = 2 calls/s, and the last one takes Claid's 10 s.
    assert report["rate_limit"] == {"per_second": 4, "per_minute": 120} and report["seconds"] == 11.0
    assert len(catalogue.scene_calls()) == 1  # nothing was sent to Claid
    assert catalogue.queue_depth("JobsQueue") == 0


def test_backfill_goes_through_the_upload_path_and_never_pays_twice(catalogue: Pipeline, capsys):
    source = f"s3://{catalogue.bucket}/incoming/"
    code, report = run(capsys, "backfill", source, "--stack", "backdrop-local", "--dry-run")
    assert (code, report["to_process"], report["sent"]) == (0, 3, 0)
    assert catalogue.queue_depth("JobsQueue") == 0
    code, report = run(capsys, "backfill", source, "--stack", "backdrop-local")
    assert (code, report["sent"]) == (0, 3)
    queue = catalogue.stack.queue_url("JobsQueue")
    sent = catalogue.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert len(sent) == 3
    catalogue.drain()
    assert len(catalogue.scene_calls(200)) == 1 + 3
    # The same messages delivered again reach the processor's idempotency: no call, no charge.
    for message in sent:
        catalogue.sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
    catalogue.drain()
    assert len(catalogue.scene_calls(200)) == 1 + 3
    jobs = catalogue.jobs()
    assert {k: jobs[k]["images"] for k in jobs} == {
        "incoming/summer/done.png": 1,
        "incoming/summer/vase.png": 1,
        "incoming/plain.png": 4,
        "incoming/meta.png": 2,
    }
    code, report = run(capsys, "backfill", source, "--stack", "backdrop-local")
    assert (code, report["to_process"], report["sent"], report["skipped"]["already_processed"]) == (0, 0, 0, 4)


def test_backfill_checks_the_budget_before_it_sends(make_pipeline, capsys):
    pipeline = make_pipeline(budget=10)
    for name in ("a", "b", "c"):
        pipeline.upload(f"incoming/{name}.png", VASE)  # 8 credits each
    pipeline.sqs.purge_queue(QueueUrl=pipeline.stack.queue_url("JobsQueue"))
    pipeline.stack.publish()
    source = f"s3://{pipeline.bucket}/incoming/"
    code, report = run(capsys, "backfill", source, "--stack", "backdrop-local")
    assert (code, report["credits"], report["budget_left"], report["sent"]) == (1, 24, 10, 0)
    assert pipeline.queue_depth("JobsQueue") == 0
    assert main(["backfill", source, "--stack", "backdrop-local", "--limit", "1"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert (report["sent"], report["skipped"]["over_limit"]) == (1, 2)
    assert pipeline.queue_depth("JobsQueue") == 1
    # For a person: the estimate and a progress bar on stderr, the report alone on stdout.
    assert "to process   1 photos" in out.err and "sending [" in out.err and "1/1" in out.err


def test_a_thousand_photos_are_listed_page_by_page(make_pipeline, capsys):
    pipeline = make_pipeline()
    # 1,000 objects outside incoming/ (skipped before any S3 call, so the test stays fast) sort before the
    # photos: those are on the second page of the listing.
    keys = [f"archive/p{i:04d}.png" for i in range(1_000)] + [f"incoming/p{i}.png" for i in range(3)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: pipeline.s3.put_object(Bucket=pipeline.bucket, Key=key, Body=PNG_HEADER), keys))
    pipeline.sqs.purge_queue(QueueUrl=pipeline.stack.queue_url("JobsQueue"))
    pipeline.stack.publish()
    code, report = run(capsys, "estimate", f"s3://{pipeline.bucket}/", "--stack", "backdrop-local")
    assert code == 0 and report["listed"] == 1_003 and report["to_process"] == 3 and report["credits"] == 24
    assert report["skipped"] == {"outside_incoming_prefix": 1_000}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["estimate", "s3://b/incoming/", "--stack", "no-such-stack"], "no stack named 'no-such-stack'"),
        (["backfill", "bucket/incoming/", "--stack", "backdrop-local"], "is not an s3://bucket/prefix URI"),
        (["backfill", "s3://another-shop/incoming/", "--stack", "backdrop-local"], "is not the uploads bucket of"),
    ],
)
def test_bad_arguments_get_a_clear_message(pipeline: Pipeline, capsys, argv, message):
    pipeline.stack.publish()
    assert main([*argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err
