"""Choosing and publishing on the local stack: the policy when a generation is recorded, a storefront's
`Select Variants` command on the bus (routed by the template's rule to the publisher), and the rejections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backdrop.publishing import METADATA_JOB, METADATA_VARIANT, METADATA_VERSION
from backdrop.store.items import as_attributes, from_attributes

from .conftest import VASE, Pipeline
from .test_secrets import _invoke_processor_once as invoke_processor_once
from .test_webhook import HEADER, Receiver, receiver, secret_of  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]

PHOTO = "incoming/red shoe (1).png"  # a space and parentheses: the stable key keeps the photo's own name
FOLDER = "published/red shoe (1).png/"  # the photo's whole path as a folder; variants are 1.jpeg, 2.jpeg, ...


def by_type(events: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in events if e["detail-type"] == detail_type]


def body(p: Pipeline, key: str) -> bytes:
    return bytes(p.s3.get_object(Bucket=p.bucket, Key=key)["Body"].read())


def published(p: Pipeline) -> list[str]:
    answer = p.s3.list_objects_v2(Bucket=p.bucket, Prefix="published/")
    return sorted(o["Key"] for o in answer.get("Contents", []))


def selection_targets(p: Pipeline, source_key: str) -> list[dict[str, Any]]:
    """What the photo's selection record says is published for it."""
    item = p.stack.client("dynamodb").get_item(
        TableName=p.stack.app_table,
        Key=as_attributes({"pk": f"PUBLISHED#{p.bucket}/{source_key}", "sk": "SELECTION"}),
        ConsistentRead=True,
    )["Item"]
    return list(json.loads(from_attributes(item)["targets"]))


def select(p: Pipeline, detail: Any, source: str = "storefront") -> None:
    """What a storefront does: put the command on the bus with its own source (the rule routes it)."""
    answer = p.stack.client("events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": "Select Variants",
                "Detail": json.dumps(detail),
                "EventBusName": p.stack.event_bus,
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


@pytest.mark.parametrize(("policy", "count"), [("first", 1), ("all", 3)])
def test_the_policy_publishes_at_stable_keys_when_the_generation_is_recorded(make_pipeline, policy, count):
    p: Pipeline = make_pipeline()
    p.upload(PHOTO, metadata={"backdrop-number-of-images": "3", "backdrop-publish": policy})
    p.drain()
    job = p.jobs()[PHOTO]
    variants = json.loads(job["detail"])["outputs"]
    keys = [f"{FOLDER}1.jpeg", f"{FOLDER}2.jpeg", f"{FOLDER}3.jpeg"][:count]
    assert published(p) == sorted(keys)
    for n, key in enumerate(keys, start=1):
        assert body(p, key) == body(p, variants[n - 1]["key"])
        head = p.s3.head_object(Bucket=p.bucket, Key=key)
        assert head["ContentType"] == "image/jpeg"
        assert head["Metadata"][METADATA_JOB] == job["job_id"] and head["Metadata"][METADATA_VARIANT] == str(n)
    [event] = by_type(p.stack.bus_events(), "Variants Published")
    assert event["version"] == 1 and [i["key"] for i in event["published"]] == keys
    assert event["selection"] == {**event["selection"], "chosen_by": "policy", "variants": list(range(1, count + 1))}
    record = p.jobs()[PHOTO]
    assert record["selection_version"] == 1 and json.loads(record["selection"])["actor"] == f"policy {policy}"


def test_the_default_policy_publishes_nothing_and_review_waits(make_pipeline):
    p: Pipeline = make_pipeline()
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    p.upload("incoming/vase.png", metadata={"backdrop-number-of-images": "1", "backdrop-publish": "review"})
    p.drain()
    assert published(p) == []
    assert by_type(p.stack.bus_events(), "Variants Published") == []
    assert {j["publish"] for j in p.jobs().values()} == {"none", "review"}


def test_a_profile_sets_the_policy_and_metadata_overrides_it(make_pipeline):
    p: Pipeline = make_pipeline()
    p.stack.put_profile("summer", {"number_of_images": 2, "publish": "all"})
    p.upload("incoming/summer/cup.png")
    p.upload("incoming/summer/vase.png", metadata={"backdrop-publish": "none"})
    p.drain()
    assert published(p) == ["published/summer/cup.png/1.jpeg", "published/summer/cup.png/2.jpeg"]


def test_a_storefront_command_chooses_and_a_second_one_replaces_in_place(make_pipeline, receiver):  # noqa: F811
    p: Pipeline = make_pipeline(parameters={"WebhookUrl": receiver.url})
    meta = {"backdrop-number-of-images": "4", "backdrop-publish": "review", "backdrop-renditions": "200 webp"}
    p.upload(PHOTO, metadata=meta)
    p.drain()
    job = p.jobs()[PHOTO]
    variants = [o["key"] for o in json.loads(job["detail"])["outputs"]]
    p.stack.bus_events()

    select(p, {"job_id": job["job_id"], "variants": [3, 1], "request_id": "shop-42"})
    p.drain()
    assert published(p) == sorted([f"{FOLDER}1.jpeg", f"{FOLDER}2.jpeg", f"{FOLDER}1-200.webp", f"{FOLDER}2-200.webp"])
    assert body(p, f"{FOLDER}1.jpeg") == body(p, variants[2])
    assert body(p, f"{FOLDER}2.jpeg") == body(p, variants[0])

    select(p, {"job_id": job["job_id"], "variants": [4], "expected_version": 1, "chosen_by": "merchant ana"})
    p.drain()
    assert published(p) == [f"{FOLDER}1-200.webp", f"{FOLDER}1.jpeg"]  # the second image's keys are gone
    assert body(p, f"{FOLDER}1.jpeg") == body(p, variants[3])
    assert p.s3.head_object(Bucket=p.bucket, Key=f"{FOLDER}1.jpeg")["Metadata"][METADATA_VERSION] == "2"
    versions = p.s3.list_object_versions(Bucket=p.bucket, Prefix=f"{FOLDER}1.jpeg").get("Versions", [])
    assert len(versions) == 2  # bucket versioning keeps what was published before

    events = by_type(p.stack.bus_events(), "Variants Published")
    assert [(e["version"], e["request_id"], e["selection"]["chosen_by"]) for e in events] == [
        (1, "shop-42", "command"),
        (2, None, "command"),
    ]
    assert events[1]["selection"]["actor"] == "storefront (merchant ana)"
    assert events[1]["removed"] == [f"{FOLDER}2-200.webp", f"{FOLDER}2.jpeg"]  # the image and its rendition
    # The webhook forwards the choices too, with the secret header.
    posted = [r for r in receiver.requests if r["body"]["detail-type"] == "Variants Published"]
    assert [r["body"]["detail"]["version"] for r in posted] == [1, 2]
    assert all(r["headers"][HEADER] == secret_of(p) for r in posted)
    # ... and the renditions of each choice (a 200 px WEBP of each published image), with their keys and version.
    ready = [r["body"]["detail"] for r in receiver.requests if r["body"]["detail-type"] == "Renditions Published"]
    assert [(d["version"], [x["key"] for x in d["renditions"]]) for d in ready] == [
        (1, [f"{FOLDER}1-200.webp", f"{FOLDER}2-200.webp"]),
        (2, [f"{FOLDER}1-200.webp"]),
    ]


def test_cup_2_and_cup_publish_side_by_side_and_a_new_choice_removes_only_its_own(make_pipeline):
    """Issue 17: `cup.png`'s second variant used to overwrite `cup-2.png`'s image at `published/cup-2.jpeg`, and
    choosing variant 1 alone for `cup.png` then deleted it. Each photo now has a folder of its own."""
    p: Pipeline = make_pipeline()
    p.upload("incoming/cup-2.png", VASE, metadata={"backdrop-number-of-images": "1", "backdrop-publish": "first"})
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "4", "backdrop-publish": "all"})
    p.drain()
    jobs = p.jobs()
    variants = {key: [o["key"] for o in json.loads(job["detail"])["outputs"]] for key, job in jobs.items()}
    cup_2 = ["published/cup-2.png/1.jpeg"]
    cup = [f"published/cup.png/{n}.jpeg" for n in range(1, 5)]
    assert published(p) == sorted(cup_2 + cup)
    assert body(p, cup_2[0]) == body(p, variants["incoming/cup-2.png"][0])
    assert [body(p, key) for key in cup] == [body(p, key) for key in variants["incoming/cup.png"]]
    p.stack.bus_events()

    select(p, {"job_id": jobs["incoming/cup.png"]["job_id"], "variants": [1]})
    p.drain()
    assert published(p) == sorted(cup_2 + cup[:1])
    assert body(p, cup_2[0]) == body(p, variants["incoming/cup-2.png"][0])  # never overwritten, never deleted
    [event] = by_type(p.stack.bus_events(), "Variants Published")
    assert event["source"]["key"] == "incoming/cup.png" and event["removed"] == cup[1:]
    # Each photo's record lists exactly what is in its folder.
    assert [t["key"] for t in selection_targets(p, "incoming/cup-2.png")] == cup_2
    assert [t["key"] for t in selection_targets(p, "incoming/cup.png")] == cup[:1]


def test_bad_commands_change_nothing_and_each_ends_in_selection_rejected(make_pipeline):
    p: Pipeline = make_pipeline()
    p.upload(PHOTO, metadata={"backdrop-number-of-images": "2", "backdrop-publish": "review"})
    p.upload("incoming/notes.png", b"not an image")
    p.drain()
    jobs = p.jobs()
    good, rejected = jobs[PHOTO]["job_id"], jobs["incoming/notes.png"]["job_id"]
    p.stack.bus_events()
    commands = [
        ({"job_id": "0" * 32, "variants": [1]}, "unknown_job"),
        ({"job_id": good, "variants": [5]}, "malformed_command"),
        ({"job_id": good, "variants": [3]}, "no_such_variant"),
        ({"job_id": rejected, "variants": [1]}, "job_not_succeeded"),
        ({"job_id": good}, "malformed_command"),
        ({"job_id": good, "variants": [1], "expected_version": 4}, "version_conflict"),
    ]
    for detail, _ in commands:
        select(p, detail)
    select(p, {"job_id": good, "variants": [1]}, source="backdrop")  # not a storefront's: no rule routes it
    p.drain()
    reasons = sorted(e["reason"] for e in by_type(p.stack.bus_events(), "Selection Rejected"))
    assert reasons == sorted(reason for _, reason in commands)
    assert published(p) == []
    assert "selection_version" not in p.jobs()[PHOTO]
    assert p.queue_depth("PublisherDLQ") == 0  # a refusal is an answer, not a failure


def test_a_job_in_flight_cannot_be_chosen(make_pipeline):
    p: Pipeline = make_pipeline()
    p.upload(PHOTO, metadata={"backdrop-number-of-images": "1", "backdrop-publish": "review"})
    # Only the processor runs: Claid answered and the credits are reserved; the recorder has not written the job.
    invoke_processor_once(p)
    [succeeded] = by_type(p.stack.bus_events(), "Generation Succeeded")
    command = json.loads((ROOT / "events" / "eventbridge-select-variants.json").read_text())  # a whole envelope
    p.runner.invoke("PublisherFunction", {**command, "detail": {"job_id": succeeded["job_id"], "variants": [1]}})
    [refused] = by_type(p.stack.bus_events(), "Selection Rejected")
    assert refused["reason"] == "job_in_flight" and "still being generated" in refused["message"]
