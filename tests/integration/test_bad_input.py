"""Bad input ends in one terminal 'rejected' record with a reason a person can act on, and costs nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import CUP, Pipeline

CASES = {
    "incoming/notes.png": (b"these are not pixels", {}, "not_an_image"),
    "incoming/empty.jpg": (b"", {}, "empty_file"),
    "incoming/huge.png": (CUP + b"\0" * 2_000_000, {}, "too_large"),
    "incoming/bad-count.png": (CUP, {"backdrop-number-of-images": "7"}, "bad_settings"),
    "incoming/bad-field.png": (CUP, {"backdrop-colour": "#ffffff"}, "bad_settings"),
    "incoming/nope/cup.png": (CUP, {}, "unknown_profile"),
    "incoming/bad-profile-in-meta.png": (CUP, {"backdrop-profile": "missing"}, "unknown_profile"),
    # 1,023 bytes (518 characters): S3 takes it, but its published images would need keys of 1,031 bytes.
    "incoming/" + "é" * 505 + ".png": (CUP, {}, "key_too_long"),
}
# Uploaded with a browser form (POST Object, as a storefront's upload page sends it), whose field names reach S3
# as written. A PUT cannot carry `x-amz-meta-…_…` to the local stack: moto's server (werkzeug) drops request headers
# with '_' in their names, where S3 keeps them.
POSTED = {
    # Two spellings of one setting: S3 keeps both keys, and which one the uploader meant would be a guess.
    "incoming/two-spellings.png": (
        CUP,
        {"backdrop-number-of-images": "1", "backdrop-number_of_images": "4"},
        "bad_metadata",
    ),
}
EVERY_CASE = {**CASES, **POSTED}


def _post_form(p: Pipeline, key: str, body: bytes, metadata: dict[str, str]) -> None:
    fields = {f"x-amz-meta-{name}": value for name, value in metadata.items()}
    form = p.s3.generate_presigned_post(
        p.bucket, key, Fields=fields, Conditions=[{name: value} for name, value in fields.items()]
    )
    answer = httpx.post(form["url"], data=form["fields"], files={"file": (key.rsplit("/", 1)[-1], body)})
    assert answer.status_code == 204, answer.text


@pytest.fixture(scope="module")
def rejected(request):
    from backdrop_kit.stack import LocalStack, StackOptions

    from .conftest import Pipeline

    stack = LocalStack(StackOptions(parameters={"MaxUploadBytes": "1000000"}))
    stack.start()
    request.addfinalizer(stack.stop)
    p = Pipeline(stack)
    for key, (body, metadata, _) in CASES.items():
        p.upload(key, body, metadata)
    for key, (body, metadata, _) in POSTED.items():
        _post_form(p, key, body, metadata)
    p.drain()
    return p, p.jobs(), p.stack.notifications()


@pytest.mark.parametrize("key", list(EVERY_CASE))
def test_each_bad_upload_is_rejected_with_its_reason(rejected, key):
    _, jobs, notes = rejected
    job = jobs[key]
    assert job["status"] == "rejected"
    assert job["reason"] == EVERY_CASE[key][2]
    assert job["credits"] == 0 and job["images"] == 0
    assert job["reason_message"]  # a sentence for a person
    [note] = [n for n in notes if n["message"]["source"]["key"] == key]
    assert note["attributes"]["status"] == "rejected" and note["attributes"]["reason"] == EVERY_CASE[key][2]


def test_rejections_never_reach_claid_and_cost_nothing(rejected):
    p, jobs, _ = rejected
    assert p.scene_calls() == []
    assert len(jobs) == len(EVERY_CASE)


def test_messages_name_the_field_and_the_fix(rejected):
    _, jobs, _ = rejected
    assert "number_of_images (object metadata)" in jobs["incoming/bad-count.png"]["reason_message"]
    assert "colour" in jobs["incoming/bad-field.png"]["reason_message"]
    assert "/profiles/nope" in jobs["incoming/nope/cup.png"]["reason_message"]
    assert "1,000,000" in jobs["incoming/huge.png"]["reason_message"]
    assert jobs["incoming/two-spellings.png"]["reason_message"] == (
        "x-amz-meta-backdrop-number-of-images and x-amz-meta-backdrop-number_of_images both set number_of_images: "
        "give it once, as x-amz-meta-backdrop-number-of-images"
    )


def test_malformed_message_lands_in_the_dlq_and_nothing_else_happens(pipeline: Pipeline):
    pipeline.sqs.send_message(QueueUrl=pipeline.stack.queue_url("JobsQueue"), MessageBody="{not json")
    pipeline.drain(timeout=120)
    dlq = pipeline.stack.queue_url("JobsDLQ")
    [message] = pipeline.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert message["Body"] == "{not json"
    assert pipeline.jobs() == {} and pipeline.scene_calls() == []


def test_test_event_and_forged_key_outside_incoming_do_nothing(pipeline: Pipeline):
    queue = pipeline.stack.queue_url("JobsQueue")
    pipeline.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Event": "s3:TestEvent", "Bucket": "x"}))
    forged = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": pipeline.bucket}, "object": {"key": "generated%2Fx%2Fy.jpeg"}},
            }
        ]
    }
    pipeline.upload("generated/x/y.jpeg")
    pipeline.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(forged))
    pipeline.drain()
    assert pipeline.jobs() == {} and pipeline.scene_calls() == []
    assert pipeline.queue_depth("JobsDLQ") == 0
