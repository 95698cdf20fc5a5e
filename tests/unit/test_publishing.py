"""The publishing rules with fakes: policy, command validation, key naming, ownership of keys, versions and races."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from backdrop.events import GenerationDetail
from backdrop.keys import published_folder, published_key
from backdrop.publishing import (
    METADATA_RENDITION,
    METADATA_SOURCE,
    METADATA_VARIANT,
    METADATA_VERSION,
    SELECTION_REJECTED,
    VARIANTS_PUBLISHED,
    Publisher,
    renditions_of,
)
from backdrop.store.jobs import DynamoJobs
from backdrop.store.reservations import DynamoReservations
from backdrop.store.selections import DynamoSelections
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BUCKET = "shop"
PHOTO = "incoming/shoes/red shoe.png"
FOLDER = "published/shoes/red shoe.png/"  # the photo's whole path, extension kept, as a folder
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
        self.deleted: list[str] = []
        self.copied: list[str] = []
        self.on_copy: Callable[[str], None] | None = None

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str], **kwargs: Any) -> None:
        if CopySource["Key"] not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "CopyObject")
        body = self.objects[CopySource["Key"]][0]
        if self.on_copy is not None:
            hook, self.on_copy = self.on_copy, None
            hook(Key)  # something else happens while this copy is on its way
        self.objects[Key] = (body, dict(kwargs["Metadata"]))
        self.copied.append(Key)

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {"Metadata": self.objects[Key][1]}

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.deleted.append(Key)
        self.objects.pop(Key, None)

    # No listing here: the publisher must find a photo's keys in its record, and has no s3:ListBucket.


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
            s3=self.s3,
            events=self.events,
            jobs=DynamoJobs(self.db, "app"),  # type: ignore[arg-type]
            selections=DynamoSelections(self.db, "app"),  # type: ignore[arg-type]
            reservations=DynamoReservations(self.db, "app"),  # type: ignore[arg-type]
            event_bus_name="bus",
        )

    def job(
        self,
        job_id: str,
        *,
        images: int = 4,
        status: str = "succeeded",
        publish: str = "review",
        key: str = "",
        renditions: str | None = None,
    ) -> dict[str, Any]:
        key = key or PHOTO
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
                "settings": {
                    "publish": publish,
                    "number_of_images": images,
                    **({"renditions": renditions} if renditions else {}),
                },
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

    def make_renditions(self) -> None:
        """What the renditions function has Claid do: each rendition the record asks for, made under the job's
        generated folder (its bytes name the variant and the size)."""
        record = self.publisher.current(BUCKET, PHOTO)
        for rendition in renditions_of(record):
            self.s3.objects[rendition.from_key] = (f"{rendition.source_key}@{rendition.spec}".encode(), {})


JOB_A, JOB_B = "a" * 32, "b" * 32


@pytest.fixture
def world() -> World:
    return World()


def test_stable_keys_are_files_in_a_folder_named_by_the_whole_photo_path():
    folder = published_folder(PHOTO, "incoming/", "published/")
    assert folder == FOLDER
    assert published_key(folder, 1, "jpeg") == "published/shoes/red shoe.png/1.jpeg"
    assert published_key(folder, 3, "webp") == "published/shoes/red shoe.png/3.webp"
    assert published_folder("incoming/no-extension", "incoming/", "published/") == "published/no-extension/"
    assert published_folder("photos/cup.png", "photos/", "live/") == "live/cup.png/"


@pytest.mark.parametrize(
    ("position", "extension"), [(0, "jpeg"), (5, "jpeg"), (1, ""), (1, "x/y"), (1, "JPEG"), (1, "jpeg-2048")]
)
def test_a_published_file_name_is_a_position_and_a_plain_extension(position, extension):
    with pytest.raises(ValueError):
        published_key(FOLDER, position, extension)


def test_a_key_outside_the_watched_prefix_has_no_folder():
    """Stripping nothing from it would give `x.png` the folder of `incoming/x.png`."""
    with pytest.raises(ValueError, match="not under"):
        published_folder("x.png", "incoming/", "published/")


@pytest.mark.parametrize(("policy", "expected"), [("first", [1]), ("all", [1, 2, 3])])
def test_the_policy_publishes_first_or_all(world, policy, expected):
    detail = world.job(JOB_A, images=3, publish=policy)
    outcome = world.publisher.apply_policy(detail)
    assert outcome is not None and outcome.ok
    keys = [f"{FOLDER}1.jpeg", f"{FOLDER}2.jpeg", f"{FOLDER}3.jpeg"]
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


def test_a_policy_attempt_that_died_after_its_claim_is_completed_by_the_redelivery(world):
    detail = world.job(JOB_A, publish="all", images=2)
    # The first attempt claimed version 1 and died before copying anything (Lambda times out, the process ends).
    world.publisher._claim(JOB_A, [1, 2], "policy", "policy all", None, True)
    assert world.published() == {}
    assert world.publisher.apply_policy(detail) is None  # the redelivered event: no second claim ...
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:1".encode(), f"{FOLDER}2.jpeg": f"{JOB_A}:2".encode()}
    assert world.publisher.current(BUCKET, PHOTO).version == 1  # ... and the record it made is what is live


def test_a_person_who_chose_first_is_not_overridden_by_the_policy(world):
    detail = world.job(JOB_A, publish="first")
    assert world.publisher.choose(JOB_A, [3], chosen_by="person", actor="arn:aws:iam::1:user/ana").ok
    assert world.publisher.apply_policy(detail) is None
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:3".encode()}


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
    assert sorted(outcome.published.removed) == [f"{FOLDER}2.jpeg", f"{FOLDER}3.jpeg"]
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:4".encode()}
    job = world.db.items[(f"JOB#{JOB_A}", "JOB")]
    assert job["selection_version"] == 2 and json.loads(job["selection"])["variants"] == [4]


def test_only_keys_the_record_lists_are_removed_never_others_in_the_folder(world):
    """The record owns the keys, not a listing by name: a file the photo's record never listed (a rendition of
    issue 18 to come, or something put there by hand) stays, even in the photo's own folder."""
    world.job(JOB_A)
    world.s3.objects[f"{FOLDER}2-2048.webp"] = (b"not a variant", {METADATA_SOURCE: PHOTO})
    world.s3.objects[f"{FOLDER}4.jpeg"] = (b"put by hand", {})
    assert world.publisher.choose(JOB_A, [1, 2], chosen_by="person", actor="ana").ok
    outcome = world.publisher.choose(JOB_A, [3], chosen_by="person", actor="ana")
    assert outcome.published is not None and outcome.published.removed == [f"{FOLDER}2.jpeg"]
    assert world.published() == {
        f"{FOLDER}1.jpeg": f"{JOB_A}:3".encode(),
        f"{FOLDER}2-2048.webp": b"not a variant",
        f"{FOLDER}4.jpeg": b"put by hand",
    }


def published_by_policy(world: World, recorded: dict[str, Any]) -> None:
    outcome = world.publisher.apply_policy(recorded)
    assert outcome is not None and outcome.ok, outcome


def test_cup_2_and_cup_never_share_a_key(world):
    """Issue 17: `cup-2.png` publishes first, then `cup.png` publishes all four; under the old names `cup.png`'s
    second variant overwrote `published/cup-2.jpeg`. Now each photo has a folder of its own."""
    published_by_policy(world, world.job(JOB_A, key="incoming/cup-2.png", publish="first"))
    published_by_policy(world, world.job(JOB_B, key="incoming/cup.png", publish="all"))
    assert world.published() == {
        "published/cup-2.png/1.jpeg": f"{JOB_A}:1".encode(),
        **{f"published/cup.png/{n}.jpeg": f"{JOB_B}:{n}".encode() for n in range(1, 5)},
    }


def test_choosing_one_variant_for_cup_leaves_cup_2_s_image(world):
    """Issue 17: choosing variant 1 alone for `cup.png` deleted `published/cup-2.jpeg`, which `cup-2.png`'s record
    still pointed at. Now it removes only its own keys, and `cup-2.png`'s record matches the bucket."""
    published_by_policy(world, world.job(JOB_A, key="incoming/cup-2.png", publish="first"))
    published_by_policy(world, world.job(JOB_B, key="incoming/cup.png", publish="all"))
    outcome = world.publisher.choose(JOB_B, [1], chosen_by="person", actor="ana")
    assert outcome.published is not None
    assert outcome.published.removed == [f"published/cup.png/{n}.jpeg" for n in (2, 3, 4)]
    assert world.published() == {
        "published/cup-2.png/1.jpeg": f"{JOB_A}:1".encode(),
        "published/cup.png/1.jpeg": f"{JOB_B}:1".encode(),
    }
    record = world.publisher.current(BUCKET, "incoming/cup-2.png")
    assert record is not None
    assert [t["key"] for t in json.loads(record.targets)] == ["published/cup-2.png/1.jpeg"]


def test_red_png_and_red_jpg_are_two_photos_with_two_folders(world):
    """Issue 17: both were `published/red.jpeg`; the extension is part of the photo's path, so it stays."""
    published_by_policy(world, world.job(JOB_A, key="incoming/red.png", publish="all", images=2))
    published_by_policy(world, world.job(JOB_B, key="incoming/red.jpg", publish="first"))
    assert world.publisher.choose(JOB_A, [2], chosen_by="person", actor="ana").ok
    assert world.published() == {
        "published/red.png/1.jpeg": f"{JOB_A}:2".encode(),
        "published/red.jpg/1.jpeg": f"{JOB_B}:1".encode(),
    }


def test_a_photo_named_like_another_photo_s_folder_keeps_its_own_files(world):
    """`incoming/cup.png/side.png` publishes under `published/cup.png/side.png/`, a subfolder of `cup.png`'s
    folder: files directly in a folder are its photo's, and nothing there is removed by `cup.png`'s choices."""
    published_by_policy(world, world.job(JOB_A, key="incoming/cup.png/side.png", publish="all", images=2))
    published_by_policy(world, world.job(JOB_B, key="incoming/cup.png", publish="all", images=2))
    assert world.publisher.choose(JOB_B, [2], chosen_by="person", actor="ana").ok
    assert world.published() == {
        "published/cup.png/side.png/1.jpeg": f"{JOB_A}:1".encode(),
        "published/cup.png/side.png/2.jpeg": f"{JOB_A}:2".encode(),
        "published/cup.png/1.jpeg": f"{JOB_B}:2".encode(),
    }


def legacy_selection(world: World, job_id: str, source_key: str, keys: list[str]) -> None:
    """A photo's selection as the publisher recorded it before decisions 33: `published/<path without its
    extension>[-N].<ext>`, a `stem`, no `retired`; its objects carry the source key in their metadata."""
    targets = [
        {
            "variant": n,
            "bucket": BUCKET,
            "key": key,
            "from_key": f"generated/x/{job_id}/variant-{n}.jpeg",
            "format": "jpeg",
        }
        for n, key in enumerate(keys, start=1)
    ]
    selection = {
        "version": 1,
        "job_id": job_id,
        "variants": list(range(1, len(keys) + 1)),
        "chosen_by": "policy",
        "actor": "policy all",
        "chosen_at": "2026-11-01T00:00:00.000+00:00",
    }
    world.db.put(
        {
            "pk": f"PUBLISHED#{BUCKET}/{source_key}",
            "sk": "SELECTION",
            "version": 1,
            "job_id": job_id,
            "selection": json.dumps(selection),
            "targets": json.dumps(targets),
            "stem": posixpath.splitext(source_key.replace("incoming/", "published/", 1))[0],
        }
    )
    for n, key in enumerate(keys, start=1):
        world.s3.objects[key] = (f"old {source_key}:{n}".encode(), {METADATA_SOURCE: quote(source_key, safe="/")})


@pytest.mark.parametrize("last_writer", ["incoming/cup-2.png", "incoming/cup.png"])
def test_an_upgraded_stack_cleans_up_old_keys_its_records_list_and_never_another_photo_s(world, last_writer):
    """Records from before decisions 33: `cup.png` listed `published/cup.jpeg` and `published/cup-2.jpeg`, and so
    did `cup-2.png` the latter, whose object is the one whoever wrote last left there. On its next choice each
    photo moves to its folder and deletes the old keys its record lists, but an object only if it is its own."""
    world.job(JOB_A, key="incoming/cup-2.png")
    world.job(JOB_B, key="incoming/cup.png")
    first = "incoming/cup.png" if last_writer == "incoming/cup-2.png" else "incoming/cup-2.png"
    old_keys = {
        "incoming/cup.png": ["published/cup.jpeg", "published/cup-2.jpeg"],
        "incoming/cup-2.png": ["published/cup-2.jpeg"],
    }
    legacy_selection(world, JOB_B if first == "incoming/cup.png" else JOB_A, first, old_keys[first])
    legacy_selection(world, JOB_B if last_writer == "incoming/cup.png" else JOB_A, last_writer, old_keys[last_writer])

    cup = world.publisher.choose(JOB_B, [1], chosen_by="person", actor="ana")
    assert cup.published is not None and cup.published.version == 2
    if last_writer == "incoming/cup-2.png":
        assert cup.published.removed == ["published/cup.jpeg"]
        assert world.published()["published/cup-2.jpeg"] == b"old incoming/cup-2.png:1"
    else:
        assert cup.published.removed == ["published/cup-2.jpeg", "published/cup.jpeg"]
    cup_2 = world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana")
    assert cup_2.published is not None
    assert cup_2.published.removed == (["published/cup-2.jpeg"] if last_writer == "incoming/cup-2.png" else [])
    assert world.published() == {
        "published/cup.png/1.jpeg": f"{JOB_B}:1".encode(),
        "published/cup-2.png/1.jpeg": f"{JOB_A}:1".encode(),
    }


def test_a_copy_that_lands_after_its_chooser_gave_up_is_removed_by_the_next_choice(world):
    """The record keeps every key an earlier selection listed: an older choice's copy that lands after the newer
    one cleaned up, from a chooser that died before re-reading, is still the photo's, and goes next time."""
    world.job(JOB_A)
    assert world.publisher.choose(JOB_A, [1, 2], chosen_by="person", actor="ana").ok
    assert world.publisher.choose(JOB_A, [3], chosen_by="person", actor="ana").ok
    world.s3.objects[f"{FOLDER}2.jpeg"] = (f"{JOB_A}:2".encode(), {METADATA_SOURCE: quote(PHOTO, safe="/")})
    outcome = world.publisher.choose(JOB_A, [4], chosen_by="person", actor="ana")
    assert outcome.published is not None and outcome.published.removed == [f"{FOLDER}2.jpeg"]
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:4".encode()}


def test_a_key_already_gone_is_not_deleted_again(world):
    """In a versioned bucket every DeleteObject of a missing key adds a delete marker: the keys a record keeps
    from earlier selections are looked at, and deleted only while they are there."""
    world.job(JOB_A)
    assert world.publisher.choose(JOB_A, [1, 2, 3], chosen_by="person", actor="ana").ok
    assert world.publisher.choose(JOB_A, [4], chosen_by="person", actor="ana").ok
    assert world.publisher.choose(JOB_A, [2], chosen_by="person", actor="ana").ok
    assert world.s3.deleted == [f"{FOLDER}2.jpeg", f"{FOLDER}3.jpeg"]
    record = world.publisher.current(BUCKET, PHOTO)
    assert record is not None and json.loads(record.retired) == [f"{FOLDER}2.jpeg", f"{FOLDER}3.jpeg"]


def test_a_photo_outside_the_watched_prefix_is_refused_not_published_elsewhere(world):
    """A job recorded before UploadPrefix changed: `photos/cup.png` has no folder under the new prefix (stripping
    nothing would give it the folder of `incoming/photos/cup.png`)."""
    world.job(JOB_A, key="photos/cup.png")
    outcome = world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana")
    assert outcome.rejected is not None and outcome.rejected.reason == "source_outside_prefix"
    assert world.published() == {} and "selection_version" not in world.db.items[(f"JOB#{JOB_A}", "JOB")]


def test_two_choices_at_once_one_version_wins_and_the_other_changes_nothing(world):
    world.job(JOB_A)

    def the_storefront_is_quicker() -> None:
        assert world.publisher.command("storefront", command(variants=[2])).ok

    world.db.before_transact = the_storefront_is_quicker
    lost = world.publisher.choose(JOB_A, [3], chosen_by="person", actor="ana")
    assert lost.rejected is not None and lost.rejected.reason == "version_conflict"
    assert lost.rejected.current_version == 1
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:2".encode()}
    assert [e["version"] for e in world.events.of(VARIANTS_PUBLISHED)] == [1]


def test_a_slow_copy_of_an_older_version_cannot_outlive_the_newer_record(world):
    """A claims v1; while its copy is on the way B claims v2 and publishes; A's stale copy lands last.
    A re-reads after copying, finds v2, and applies it: the object ends as the record says."""
    world.job(JOB_A)

    def a_newer_choice_lands_first(key: str) -> None:
        assert world.publisher.command("storefront", command(variants=[4])).ok

    world.s3.on_copy = a_newer_choice_lands_first
    assert world.publisher.choose(JOB_A, [1, 2], chosen_by="person", actor="ana").ok
    record = world.publisher.current(BUCKET, PHOTO)
    assert record is not None and record.version == 2
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:4".encode()}
    head = world.s3.head_object(Bucket=BUCKET, Key=f"{FOLDER}1.jpeg")["Metadata"]
    assert head[METADATA_VERSION] == "2" and head[METADATA_VARIANT] == "4"


def test_the_version_is_per_photo_so_a_reupload_continues_it(world):
    world.job(JOB_A, publish="first")
    assert world.publisher.apply_policy(world.job(JOB_A, publish="first")) is not None
    newer = world.job(JOB_B, publish="first")
    outcome = world.publisher.apply_policy(newer)
    assert outcome is not None and outcome.published is not None and outcome.published.version == 2
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_B}:1".encode()}


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
        assert world.published()[published_key(FOLDER, 1, "jpeg")]
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


# --- renditions: planned with the choice, owned by the record, never standing in for a newer choice's ----------
def rendition_of(job_id: str, variant: int, spec: str) -> bytes:
    return f"generated/red-shoe/{job_id}/variant-{variant}.jpeg@{spec}".encode()


def test_a_choice_plans_its_renditions_at_keys_beside_its_images_and_publishes_them_once_made(world):
    world.job(JOB_A, renditions="2048 webp, 800 jpeg")
    outcome = world.publisher.choose(JOB_A, [3, 1], chosen_by="person", actor="ana")
    assert outcome.published is not None and outcome.published.rendition_count == 4
    planned = {(r.key, r.variant, r.spec, r.width) for r in outcome.published.renditions}
    assert planned == {
        (f"{FOLDER}1-2048.webp", 3, "2048 webp", 2048),
        (f"{FOLDER}1-800.jpeg", 3, "800 jpeg", 800),
        (f"{FOLDER}2-2048.webp", 1, "2048 webp", 2048),
        (f"{FOLDER}2-800.jpeg", 1, "800 jpeg", 800),
    }
    assert set(world.published()) == {f"{FOLDER}1.jpeg", f"{FOLDER}2.jpeg"}  # none is made yet
    world.make_renditions()
    world.publisher.converge(BUCKET, PHOTO)
    assert world.published()[f"{FOLDER}1-2048.webp"] == rendition_of(JOB_A, 3, "2048 webp")
    assert world.published()[f"{FOLDER}2-800.jpeg"] == rendition_of(JOB_A, 1, "800 jpeg")
    head = world.s3.head_object(Bucket=BUCKET, Key=f"{FOLDER}1-2048.webp")["Metadata"]
    assert (head[METADATA_RENDITION], head[METADATA_VARIANT], head[METADATA_VERSION]) == ("2048 webp", "3", "1")


def test_a_new_choice_retires_renditions_it_no_longer_asks_for_and_reuses_those_made(world):
    world.job(JOB_A, renditions="2048 webp, 800 jpeg")
    assert world.publisher.choose(JOB_A, [3, 1], chosen_by="person", actor="ana").ok
    world.make_renditions()
    world.publisher.converge(BUCKET, PHOTO)
    # Variant 1 alone, now the main image: its renditions were made at position 2 and move to position 1.
    outcome = world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana")
    assert outcome.published is not None
    assert sorted(outcome.published.removed) == [f"{FOLDER}2-2048.webp", f"{FOLDER}2-800.jpeg", f"{FOLDER}2.jpeg"]
    assert world.published() == {
        f"{FOLDER}1.jpeg": f"{JOB_A}:1".encode(),
        f"{FOLDER}1-2048.webp": rendition_of(JOB_A, 1, "2048 webp"),
        f"{FOLDER}1-800.jpeg": rendition_of(JOB_A, 1, "800 jpeg"),
    }


def test_a_rendition_of_an_older_choice_never_stands_in_for_the_newer_one(world):
    """Variant 2 was never rendered: until its renditions are made, its rendition keys hold nothing, not variant
    1's at the same names."""
    world.job(JOB_A, renditions="2048 webp")
    assert world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana").ok
    world.make_renditions()
    world.publisher.converge(BUCKET, PHOTO)
    assert world.published()[f"{FOLDER}1-2048.webp"] == rendition_of(JOB_A, 1, "2048 webp")
    assert world.publisher.choose(JOB_A, [2], chosen_by="person", actor="ana").ok
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:2".encode()}
    world.make_renditions()
    world.publisher.converge(BUCKET, PHOTO)
    assert world.published()[f"{FOLDER}1-2048.webp"] == rendition_of(JOB_A, 2, "2048 webp")


def test_a_late_rendition_copy_of_an_older_version_is_undone_by_the_re_read(world):
    """v1 is being applied (its image, then its rendition) when v2 (another variant, not rendered yet) is claimed and
    applied: v1's copies land last, and the re-read applies v2, which has nothing at the rendition's key yet."""
    world.job(JOB_A, renditions="800 jpeg")
    assert world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana").ok
    world.make_renditions()

    def a_newer_choice_lands_first(key: str) -> None:
        assert world.publisher.command("storefront", command(variants=[4])).ok

    world.s3.on_copy = a_newer_choice_lands_first
    world.publisher.converge(BUCKET, PHOTO)  # the renditions function, publishing v1's image and rendition
    assert world.publisher.current(BUCKET, PHOTO).version == 2  # type: ignore[union-attr]
    assert world.published() == {f"{FOLDER}1.jpeg": f"{JOB_A}:4".encode()}


def test_a_job_from_before_renditions_or_without_them_plans_none(world):
    world.job(JOB_A)
    outcome = world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana")
    assert outcome.published is not None and outcome.published.renditions == []
    assert outcome.published.rendition_count == 0


def test_the_renditions_function_adds_no_object_version_for_what_is_already_in_place(world):
    """In a versioned bucket every copy is a version: making renditions copies them, not the images again, and a
    rendition already there for this selection is left as it is."""
    world.job(JOB_A, renditions="800 jpeg")
    assert world.publisher.choose(JOB_A, [1], chosen_by="person", actor="ana").ok
    world.make_renditions()
    world.s3.copied.clear()
    world.publisher.converge(BUCKET, PHOTO, images=False)
    assert world.s3.copied == [f"{FOLDER}1-800.jpeg"]
    world.publisher.converge(BUCKET, PHOTO, images=False)
    assert world.s3.copied == [f"{FOLDER}1-800.jpeg"]
