"""The local stack's S3 behaves like S3 where backdrop depends on it: each correction listed in
kit/backdrop_kit/s3_fidelity.py, seen through moto's real HTTP endpoint and the real queue."""

from __future__ import annotations

import json
from email.header import Header
from typing import Any

import httpx
from backdrop_kit.demo import DemoOptions, run_demo

from .conftest import SAMPLES, VASE, Pipeline

GERMAN = "auf einem alten Holztisch, grüne Blätter, weiches Morgenlicht durch große Fenster"
JAPANESE = "木のテーブルの上、柔らかな朝の光、背景に観葉植物"
ONE_IMAGE = {"backdrop-number-of-images": "1"}


def s3_records(p: Pipeline, queue_url: str) -> list[dict[str, Any]]:
    """Every S3 record waiting on the queue, left there for the runner: read each message once, then hand it back."""
    records, receipts = [], []
    while True:
        answer = p.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60)
        messages = answer.get("Messages", [])
        if not messages:
            break
        for message in messages:
            receipts.append(message["ReceiptHandle"])
            records += json.loads(message["Body"]).get("Records", [])
    for receipt in receipts:
        p.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return records


def jobs_queue(p: Pipeline) -> str:
    return p.stack.queue_url("JobsQueue")


def test_notification_names_the_version_head_object_returns(pipeline: Pipeline):
    put = pipeline.upload("incoming/cup.png", metadata=ONE_IMAGE)
    [record] = s3_records(pipeline, jobs_queue(pipeline))
    obj = record["s3"]["object"]
    head = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="incoming/cup.png")
    assert obj["versionId"] == put["VersionId"] == head["VersionId"]
    assert obj["eTag"] == head["ETag"].strip('"') and obj["size"] == head["ContentLength"]
    assert isinstance(obj["size"], int) and int(obj["sequencer"], 16) > 0


def test_sequencer_grows_for_two_uploads_of_one_key_and_each_version_is_a_job(pipeline: Pipeline):
    key = "incoming/mug.png"
    first = pipeline.upload(key, metadata=ONE_IMAGE)
    second = pipeline.upload(key, body=VASE, metadata=ONE_IMAGE)
    older, newer = [r["s3"]["object"] for r in s3_records(pipeline, jobs_queue(pipeline))]
    assert (older["versionId"], newer["versionId"]) == (first["VersionId"], second["VersionId"])
    assert older["versionId"] != newer["versionId"] and older["eTag"] != newer["eTag"]
    # As S3 documents it: left-pad the shorter with zeros, then the greater string is the later event.
    width = max(len(older["sequencer"]), len(newer["sequencer"]))
    assert newer["sequencer"].rjust(width, "0") > older["sequencer"].rjust(width, "0")

    pipeline.drain()
    # Two versions of one photo are two uploads: neither collapses into the other.
    versions = {item["source_version"]: item["status"] for item in pipeline.stack.job_items()}
    assert versions == {first["VersionId"]: "succeeded", second["VersionId"]: "succeeded"}
    assert len(pipeline.scene_calls(200)) == 2


def test_unversioned_bucket_notifications_have_no_version(pipeline: Pipeline):
    queue = pipeline.sqs.create_queue(QueueName="plain-bucket-events")["QueueUrl"]
    arn = pipeline.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pipeline.s3.create_bucket(Bucket="plain-bucket")
    pipeline.s3.put_bucket_notification_configuration(
        Bucket="plain-bucket",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    put = pipeline.s3.put_object(Bucket="plain-bucket", Key="a/cup.png", Body=b"bytes")
    [record] = s3_records(pipeline, queue)
    assert "VersionId" not in put
    assert record["s3"]["object"].keys() == {"key", "size", "eTag", "sequencer"}


def test_key_arrives_url_encoded_and_is_decoded_right(pipeline: Pipeline):
    key = "incoming/Summer Sale (2026)+ Café ☕.png"
    pipeline.upload(key, metadata=ONE_IMAGE)
    [record] = s3_records(pipeline, jobs_queue(pipeline))
    # Form encoding, as S3 writes keys: a space is '+', a '+' is %2B, the '/' stays.
    assert record["s3"]["object"]["key"] == "incoming/Summer+Sale+%282026%29%2B+Caf%C3%A9+%E2%98%95.png"
    pipeline.drain()
    [job] = pipeline.stack.job_items()
    assert job["source_key"] == key and job["status"] == "succeeded"


def test_metadata_is_stored_decoded_and_returned_encoded(pipeline: Pipeline):
    pipeline.upload(
        "incoming/cup.png",
        metadata={
            "backdrop-prompt": "=?ISO-8859-1?Q?Caf=E9_au_lait?=",
            "backdrop-output-format": "=?UTF-8?Q?png?=",
            "plain": "on a marble table",
        },
    )
    returned = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="incoming/cup.png")["Metadata"]
    assert returned == {
        "backdrop-prompt": "=?UTF-8?B?Q2Fmw6kgYXUgbGFpdA==?=",  # "Café au lait", written S3's way
        "backdrop-output-format": "png",  # decodes to plain ASCII, which S3 returns as it is
        "plain": "on a marble table",
    }


def test_german_and_japanese_prompts_reach_claid_decoded(pipeline: Pipeline):
    # A merchant's tool that encodes (boto3 sends no raw non-ASCII) ...
    pipeline.upload(
        "incoming/de.png", metadata={**ONE_IMAGE, "backdrop-prompt": Header(GERMAN, "utf-8").encode(linesep="")}
    )
    # ... and an upload page that PUTs raw UTF-8 header bytes to a presigned URL.
    url = pipeline.s3.generate_presigned_url("put_object", Params={"Bucket": pipeline.bucket, "Key": "incoming/ja.png"})
    raw = {"x-amz-meta-backdrop-prompt": JAPANESE.encode(), "x-amz-meta-backdrop-number-of-images": b"1"}
    assert httpx.put(url, content=VASE, headers={**raw, "content-type": "image/png"}).status_code == 200
    for key in ("incoming/de.png", "incoming/ja.png"):
        prompt = pipeline.s3.head_object(Bucket=pipeline.bucket, Key=key)["Metadata"]["backdrop-prompt"]
        assert prompt.startswith("=?UTF-8?B?")  # what the processor is given

    pipeline.drain()
    assert sorted(c.body["scene"]["prompt"] for c in pipeline.scene_calls(200)) == sorted([GERMAN, JAPANESE])
    jobs = pipeline.jobs()
    assert json.loads(jobs["incoming/de.png"]["detail"])["settings"]["prompt"] == GERMAN
    assert json.loads(jobs["incoming/ja.png"]["detail"])["settings"]["prompt"] == JAPANESE


def test_demo_prompt_in_any_language_reaches_claid_as_written(tmp_path):
    prompts: list[str] = []

    def read_claids_requests(stack: Any, runner: Any, result: Any) -> None:
        prompts.extend(c.body["scene"]["prompt"] for c in stack.emulator.calls if c.status == 200)

    result = run_demo(
        DemoOptions(files=[SAMPLES / "espresso-cup.png"], out_dir=tmp_path, number_of_images=1, prompt=JAPANESE),
        hold=read_claids_requests,
    )
    assert [row.status for row in result.jobs] == ["succeeded"]
    assert prompts == [JAPANESE]
