"""The publishing rules with fakes: policy, command validation, key naming, versions and races."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from backdrop.events import GenerationDetail
from backdrop.publishing import (
    METADATA_SOURCE,
    METADATA_VARIANT,
    METADATA_VERSION,
    SELECTION_REJECTED,
    VARIANTS_PUBLISHED,
    Publisher,
    published_key,
    published_stem,
)
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BUCKET = "shop"
_ser, _de = TypeSerializer(), TypeDeserializer()


def _plain(av: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in av.items()}


class FakeDynamoDB:
    """Items by (pk, sk), and the two condition forms the publisher writes with."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.before_transact: Callable[[], None] | None = None

    def put(self, item: dict[str, Any]) -> None:
        self.items[(item["pk"], item["sk"])] = dict(item)

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
        key = _plain(Key)
        item = self.items.get((key["pk"], key["sk"]))
        return {"Item": {k: _ser.serialize(v) for k, v in item.items()}} if item else {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        if self.before_transact is not None:
            hook, self.before_transact = self.before_transact, None
            hook()
        for entry in TransactItems:  # all conditions first: all or nothing
            ((kind, body),) = entry.items()
            key = _plain(body["Key"]) if "Key" in body else _plain(body["Item"])
            current = self.items.get((key["pk"], key["sk"]))
            values = _plain(body.get("ExpressionAttributeValues", {}))
            condition = body.get("ConditionExpression")
            holds = {
                None: True,
                "attribute_not_exists(pk)": current is None,
                "version = :seen": current is not None and current.get("version") == values.get(":seen"),
                "#status = :succeeded": current is not None and current.get("status") == "succeeded",
            }[condition]
            if not holds:
                raise ClientError({"Error": {"Code": "TransactionCanceledException"}}, "TransactWriteItems")
        for entry in TransactItems:
            ((kind, body),) = entry.items()
            if kind == "Put":
                self.put(_plain(body["Item"]))
            else:
                key = _plain(body["Key"])
                values = _plain(body["ExpressionAttributeValues"])
                self.items[(key["pk"], key["sk"])].update(
                    selection=values[":selection"], selection_version=values[":version"]
                )


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.on_copy: Callable[[str], None] | None = None

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str], **kwargs: Any) -> None:
        if CopySource["Key"] not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "CopyObject")
        body = self.objects[CopySource["Key"]][0]
        if self.on_copy is not None:
            hook, self.on_copy = self.on_copy, None
            hook(Key)  # something else happens while this copy is on its way
        self.objects[Key] = (body, dict(kwargs["Metadata"]))

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {"Metadata": self.objects[Key][1]}

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.objects.pop(Key, None)

    def get_paginator(self, name: str) -> Any:
        s3 = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": k} for k in sorted(s3.objects) if k.startswith(Prefix)]}]

        return Pages()


class FakeEvents:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent += [(e["DetailType"], json.loads(e["Detail"])) for e in Entries]
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [d for t, d in self.sent if t == detail_type]


class World:
    def __init__(self) -> None:
        self.db, self.s3, self.events = FakeDynamoDB(), FakeS3(), FakeEvents()
        self.publisher = Publisher(
            s3=self.s3, dynamodb=self.db, events=self.events, table_name="app", event_bus_name="bus"
        )

    def job(
        self, job_id: str, *, images: int = 4, status: str = "succeeded", publish: str = "review", key: str = ""
    ) -> dict[str, Any]:
        key = key or "incoming/shoes/red shoe.png"
        outputs = []
        for n in range(1, images + 1):
            out_key = f"generated/red-shoe/{job_id}/variant-{n}.jpeg"
            self.s3.objects[out_key] = (f"{job_id}:{n}".encode(), {})
            outputs.append({"format": "jpeg", "width": 1024, "height": 1024, "bucket": BUCKET, "key": out_key})
        detail = GenerationDetail.model_validate(
            {
                "status": status,
                "job_id": job_id,
                "source": {"bucket": BUCKET, "key": key},
                "profile": "shoes",
                "settings": {"publish": publish, "number_of_images": images},
                "outputs": outputs if status == "succeeded" else [],
                "images": images if status == "succeeded" else 0,
                "credits": {"month": "2026-11"},
            }
        )
        self.db.put(
            {
                "pk": f"JOB#{job_id}",
                "sk": "JOB",
                "job_id": job_id,
                "status": status,
                "source_bucket": BUCKET,
                "source_key": key,
                "detail": detail.model_dump_json(),
            }
        )
        self.db.put({"pk": f"SOURCE#{BUCKET}/{key}", "sk": "LATEST", "job_id": job_id})
        return detail.model_dump(mode="json")

    def published(self) -> dict[str, bytes]:
        return {k: v[0] for k, v in self.s3.objects.items() if k.startswith("published/")}


JOB_A, JOB_B = "a" * 32, "b" * 32


@pytest.fixture
def world() -> World:
    return World()


def test_stable_keys_follow_the_photo_path_without_the_watched_prefix():
    stem = published_stem("incoming/shoes/red shoe.png", "incoming/", "published/")
    assert stem == "published/shoes/red shoe"
    assert published_key(stem, 1, "jpeg") == "published/shoes/red shoe.jpeg"
    assert published_key(stem, 3, "webp") == "published/shoes/red shoe-3.webp"
    assert published_stem("incoming/no-extension", "incoming/", "published/") == "published/no-extension"


@pytest.mark.parametrize(("policy", "expected"), [("first", [1]), ("all", [1, 2, 3])])
def test_the_policy_publishes_first_or_all(world, policy, expected):
    detail = world.job(JOB_A, images=3, publish=policy)
    outcome = world.publisher.apply_policy(detail)
    assert outcome is not None and outcome.ok
    keys = ["published/shoes/red shoe.jpeg", "published/shoes/red shoe-2.jpeg", "published/shoes/red shoe-3.jpeg"]
    assert world.published() == {keys[i]: f"{JOB_A}:{v}".encode() for i, v in enumerate(expected)}
    [event] = world.events.of(VARIANTS_PUBLISHED)
    assert event["version"] == 1 and event["selection"]["chosen_by"] == "policy"
    assert event["selection"]["actor"] == f"policy {policy}"
    head = world.s3.head_object(Bucket=BUCKET, Key=keys[0])["Metadata"]
    assert head[METADATA_VERSION] == "1" and head[METADATA_VARIANT] == "1"
    assert head[METADATA_SOURCE] == "incoming/shoes/red%20shoe.png"


@pytest.mark.parametrize("policy", ["none", "review"])
def test_none_and_review_publish_nothing(world, policy):
    assert world.publisher.apply_policy(world.job(JOB_A, publish=policy)) is None
    assert world.published() == {} and world.events.sent == []


def test_a_redelivered_recorded_event_publishes_once(world):
    detail = world.job(JOB_A, publish="first")
    assert world.publisher.apply_policy(detail) is not None
    assert world.publisher.apply_policy(detail) is None
    assert len(world.events.of(VARIANTS_PUBLISHED)) == 1


def test_a_person_who_chose_first_is_not_overridden_by_the_policy(world):
    detail = world.job(JOB_A, publish="first")
    assert world.publisher.choose(JOB_A, [3], chosen_by="person", actor="arn:aws:iam::1:user/ana").ok
    assert world.publisher.apply_policy(detail) is None
    assert world.published() == {"published/shoes/red shoe.jpeg": f"{JOB_A}:3".encode()}


def test_the_policy_leaves_the_newer_job_s_image_alone(world):
    old = world.job(JOB_A, publish="first")
    world.job(JOB_B, publish="first")  # a re-upload of the same photo, recorded before the old event arrived
    outcome = world.publisher.apply_policy(old)
    assert outcome is not None and outcome.rejected is not None and outcome.rejected.reason == "superseded_job"
    assert world.published() == {}


def command(**detail: Any) -> dict[str, Any]:
    return {"job_id": JOB_A, "variants": [2], **detail}


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        (command(job_id="c" * 32), "unknown_job"),
        (command(variants=[5]), "malformed_command"),  # the schema: a variant is 1-4
        (command(variants=[4]), "no_such_variant"),  # the job made 3
        (command(variants=[2, 2]), "no_such_variant"),
        (command(variants=[]), "malformed_command"),
        (command(job_id="not-a-job"), "malformed_command"),
        (command(extra="field"), "malformed_command"),
        (command(chosen_by="x" * 500), "malformed_command"),
        ("not an object", "malformed_command"),
        (command(expected_version=3), "version_conflict"),
    ],
)
def test_a_bad_command_changes_nothing_and_says_why(world, detail, reason):
    world.job(JOB_A, images=3)
    before = dict(world.db.items)
    outcome = world.publisher.command("storefront", detail)
    assert outcome.rejected is not None and outcome.rejected.reason == reason
    assert world.db.items == before and world.published() == {}
    [event] = world.events.of(SELECTION_REJECTED)
    assert event["reason"] == reason and event["message"] and event["chosen_by"] == "command"


@pytest.mark.parametrize("status", ["failed", "rejected"])
def test_a_job_without_variants_cannot_be_chosen(world, status):
    world.job(JOB_A, status=status)
    outcome = world.publisher.command("storefront", command())
    assert outcome.rejected is not None and outcome.rejected.reason == "job_not_succeeded"


def test_a_job_still_in_flight_cannot_be_chosen_yet(world):
    world.db.put({"pk": f"RESERVATION#{JOB_A}", "sk": "RESERVATION"})
    outcome = world.publisher.command("storefront", command())
    assert outcome.rejected is not None and outcome.rejected.reason == "job_in_flight"


def test_an_expired_variant_is_refused_before_anything_changes(world):
    world.job(JOB_A)
    del world.s3.objects[f"generated/red-shoe/{JOB_A}/variant-2.jpeg"]
    outcome = world.publisher.command("storefront", command())
    assert outcome.rejected is not None and outcome.rejected.reason == "variant_missing"
    assert "selection_version" not in world.db.items[(f"JOB#{JOB_A}", "JOB")]


def test_changing_the_choice_replaces_in_place_and_removes_keys_no_longer_chosen(world):
    world.job(JOB_A)
    assert world.publisher.choose(JOB_A, [1, 2, 3], chosen_by="person", actor="ana").ok
    outcome = world.publisher.command("storefront", command(variants=[4], expected_version=1, request_id="r-9"))
    assert outcome.published is not None
    assert outcome.published.version == 2 and outcome.published.request_id == "r-9"
    assert sorted(outcome.published.removed) == ["published/shoes/red shoe-2.jpeg", "published/shoes/red shoe-3.jpeg"]
    assert world.published() == {"published/shoes/red shoe.jpeg": f"{JOB_A}:4".encode()}
    job = world.db.items[(f"JOB#{JOB_A}", "JOB")]
    assert job["selection_version"] == 2 and json.loads(job["selection"])["variants"] == [4]


def test_another_photo_named_like_a_numbered_key_is_never_removed(world):
    world.job(JOB_A)
    world.s3.objects["published/shoes/red shoe-2.jpeg"] = (b"another photo's", {METADATA_SOURCE: "incoming/x.png"})
    assert world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana").ok
    assert world.published()["published/shoes/red shoe-2.jpeg"] == b"another photo's"


def test_two_choices_at_once_one_version_wins_and_the_other_changes_nothing(world):
    world.job(JOB_A)

    def the_storefront_is_quicker() -> None:
        assert world.publisher.command("storefront", command(variants=[2])).ok

    world.db.before_transact = the_storefront_is_quicker
    lost = world.publisher.choose(JOB_A, [3], chosen_by="person", actor="ana")
    assert lost.rejected is not None and lost.rejected.reason == "version_conflict"
    assert lost.rejected.current_version == 1
    assert world.published() == {"published/shoes/red shoe.jpeg": f"{JOB_A}:2".encode()}
    assert [e["version"] for e in world.events.of(VARIANTS_PUBLISHED)] == [1]


def test_a_slow_copy_of_an_older_version_cannot_outlive_the_newer_record(world):
    """A claims v1; while its copy is on the way B claims v2 and publishes; A's stale copy lands last.
    A re-reads after copying, finds v2, and applies it: the object ends as the record says."""
    world.job(JOB_A)

    def a_newer_choice_lands_first(key: str) -> None:
        assert world.publisher.command("storefront", command(variants=[4])).ok

    world.s3.on_copy = a_newer_choice_lands_first
    assert world.publisher.choose(JOB_A, [1, 2], chosen_by="person", actor="ana").ok
    record = world.publisher.current(BUCKET, "incoming/shoes/red shoe.png")
    assert record is not None and record["version"] == 2
    assert world.published() == {"published/shoes/red shoe.jpeg": f"{JOB_A}:4".encode()}
    head = world.s3.head_object(Bucket=BUCKET, Key="published/shoes/red shoe.jpeg")["Metadata"]
    assert head[METADATA_VERSION] == "2" and head[METADATA_VARIANT] == "4"


def test_the_version_is_per_photo_so_a_reupload_continues_it(world):
    world.job(JOB_A, publish="first")
    assert world.publisher.apply_policy(world.job(JOB_A, publish="first")) is not None
    newer = world.job(JOB_B, publish="first")
    outcome = world.publisher.apply_policy(newer)
    assert outcome is not None and outcome.published is not None and outcome.published.version == 2
    assert world.published() == {"published/shoes/red shoe.jpeg": f"{JOB_B}:1".encode()}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
command_fields = st.fixed_dictionaries(
    {},
    optional={
        "job_id": st.sampled_from([JOB_A, JOB_B, "", "x" * 40]) | json_values,
        "variants": st.lists(st.integers(-2, 6), max_size=5) | json_values,
        "expected_version": st.integers(-1, 3) | json_values,
        "chosen_by": st.text(max_size=200) | json_values,
        "request_id": st.text(max_size=200) | json_values,
        "schema_version": st.sampled_from(["1.0", "2.0"]) | json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(detail=command_fields | json_values, source=st.text(max_size=300))
def test_any_command_detail_ends_in_one_answer_never_an_exception(detail, source):
    world = World()
    world.job(JOB_A, images=2)
    outcome = world.publisher.command(source, detail)
    assert outcome.ok != (outcome.rejected is not None)
    assert len(world.events.sent) == 1  # exactly one answer on the bus
    if outcome.ok:
        assert detail["job_id"] == JOB_A and set(detail["variants"]) <= {1, 2}
        assert world.published()[published_key("published/shoes/red shoe", 1, "jpeg")]
    else:
        assert world.published() == {}


def test_each_answer_is_counted_by_who_chose_or_why_not(world):
    from backdrop.measures import collecting

    world.job(JOB_A, publish="first")
    with collecting() as measures:
        world.publisher.command("storefront", command(variants=[2]))
        world.publisher.command("storefront", command(variants=[9]))
        world.publisher.command("storefront", command(job_id="c" * 32))
    assert measures.total("SelectionsPublished", ("ChosenBy", "command")) == 1
    assert measures.total("SelectionsRejected", ("Reason", "malformed_command")) == 1
    assert measures.total("SelectionsRejected", ("Reason", "unknown_job")) == 1
