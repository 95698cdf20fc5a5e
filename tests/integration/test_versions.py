"""One photo, one version, one truth: Claid reads the version that was checked, and one version is one charge."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from backdrop.store.jobs import DynamoJobs
from backdrop_kit.runner import sqs_event
from backdrop_kit.stack import ACCOUNT, REGION

from .conftest import CUP, VASE, Pipeline


def jobs_of(p: Pipeline, key: str) -> list[dict[str, Any]]:
    return [item for item in p.stack.job_items() if item["source_key"] == key]


def notifications_for(p: Pipeline, key: str) -> list[dict[str, Any]]:
    """The S3 notifications waiting in the jobs queue for `key` (received, left in flight for this test)."""
    queue = p.stack.queue_url("JobsQueue")
    found: list[dict[str, Any]] = []
    while True:
        batch = p.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return found
        found += [
            m
            for m in batch
            if key in json.loads(m["Body"]).get("Records", [{}])[0].get("s3", {}).get("object", {}).get("key", "")
        ]


def test_claid_reads_exactly_the_version_that_was_checked(make_pipeline):
    # Two versions of one key uploaded back to back, before any is processed: each job generates from its own.
    p: Pipeline = make_pipeline()
    key = "incoming/swap.png"
    first = p.upload(key, CUP, metadata={"backdrop-number-of-images": "1"})["VersionId"]
    second = p.upload(key, VASE, metadata={"backdrop-number-of-images": "1"})["VersionId"]
    p.drain()
    jobs = {json.loads(j["detail"])["source"]["version_id"]: j for j in jobs_of(p, key)}
    assert set(jobs) == {first, second} and all(j["status"] == "succeeded" for j in jobs.values())
    read = {c.input_sha256 for c in p.scene_calls(200)}
    assert read == {hashlib.sha256(CUP).hexdigest(), hashlib.sha256(VASE).hexdigest()}
    for version, body in ((first, CUP), (second, VASE)):
        [call] = [c for c in p.scene_calls(200) if c.body and f"versionId={version}" in c.body["object"]["image_url"]]
        assert call.input_sha256 == hashlib.sha256(body).hexdigest()


def test_a_version_too_large_never_feeds_the_job_of_the_version_before_it(make_pipeline):
    # The swap: a small photo, then at once a large one at the same key. The small one's job must
    # generate from the small bytes; the large one is rejected on its own size, and Claid charges once.
    p: Pipeline = make_pipeline(parameters={"MaxUploadBytes": str(len(CUP) + 1000)})
    key = "incoming/swap.png"
    small = p.upload(key, CUP, metadata={"backdrop-number-of-images": "1"})["VersionId"]
    large = p.upload(key, CUP + b"\0" * 50_000, metadata={"backdrop-number-of-images": "1"})["VersionId"]
    p.drain()
    by_version = {json.loads(j["detail"])["source"]["version_id"]: j for j in jobs_of(p, key)}
    assert by_version[small]["status"] == "succeeded"
    assert by_version[large]["status"] == "rejected" and by_version[large]["reason"] == "too_large"
    [call] = p.scene_calls(200)
    assert call.input_sha256 == hashlib.sha256(CUP).hexdigest() and call.credits_charged == 2


def test_a_notification_delivered_again_after_a_profile_change_is_not_a_second_charge(make_pipeline):
    p: Pipeline = make_pipeline()
    p.stack.put_profile("summer", {"number_of_images": 1})
    key = "incoming/summer/cup.png"
    p.upload(key, CUP)
    [message] = notifications_for(p, key)
    queue = p.stack.queue_url("JobsQueue")
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[-1]}"
    p.runner.invoke("ProcessorFunction", sqs_event([message], arn))
    # The merchant changes the profile; S3 (at least once) delivers the same notification again.
    p.stack.put_profile("summer", {"number_of_images": 3})
    p.runner.invoke("ProcessorFunction", sqs_event([message], arn))
    p.drain()
    [job] = jobs_of(p, key)
    assert job["status"] == "succeeded" and job["images"] == 1
    assert len(p.scene_calls(200)) == 1


def test_the_newest_version_decides_whatever_order_its_notifications_arrive(make_pipeline):
    # The mug: red, then blue, at one key, published by policy; S3 delivers blue's notification first.
    p: Pipeline = make_pipeline()
    key = "incoming/mug.png"
    meta = {"backdrop-number-of-images": "1", "backdrop-publish": "all"}
    red = p.upload(key, CUP, metadata=meta)["VersionId"]
    blue = p.upload(key, VASE, metadata=meta)["VersionId"]
    queue = p.stack.queue_url("JobsQueue")
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[-1]}"
    messages = notifications_for(p, key)
    by_version = {json.loads(m["Body"])["Records"][0]["s3"]["object"]["versionId"]: m for m in messages}
    assert set(by_version) == {red, blue}
    for message in messages:  # delivered by hand below, in the wrong order
        p.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    for version in (blue, red):
        p.runner.invoke("ProcessorFunction", sqs_event([by_version[version]], arn))
        p.drain()

    jobs = {json.loads(j["detail"])["source"]["version_id"]: j for j in jobs_of(p, key)}
    # Both versions were generated, recorded and charged: the older one is history, not lost.
    assert {v: (j["status"], j["credits"]) for v, j in jobs.items()} == {red: ("succeeded", 2), blue: ("succeeded", 2)}
    assert (
        DynamoJobs(p.stack.client("dynamodb"), p.stack.app_table).latest_job_id(p.bucket, key) == jobs[blue]["job_id"]
    )
    published = p.s3.get_object(Bucket=p.bucket, Key="published/mug.png/1.jpeg")
    assert published["Metadata"]["backdrop-job-id"] == jobs[blue]["job_id"]
    [blue_variant] = json.loads(jobs[blue]["detail"])["outputs"]
    assert published["Body"].read() == p.s3.get_object(Bucket=p.bucket, Key=blue_variant["key"])["Body"].read()
    refused = [e for e in p.stack.bus_events() if e["detail-type"] == "Selection Rejected"]
    reasons = [(e["detail"]["job_id"], e["detail"]["reason"]) for e in refused]
    assert reasons == [(jobs[red]["job_id"], "superseded_job")]
