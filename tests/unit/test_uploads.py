"""Keys, the loop guard, notifications read from queue messages, and the image sniff."""

import json
from pathlib import Path

import pytest
from backdrop.jobs import job_id_for, storage_uri
from backdrop.uploads import (
    MalformedMessage,
    Upload,
    UploadRejected,
    check_key,
    output_stem,
    profile_from_key,
    sniff_image_type,
    uploads_from_message,
)

SAMPLE = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples" / "espresso-cup.png"


def s3_body(key: str, event: str = "ObjectCreated:Put") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": event,
                    "eventTime": "2026-11-24T10:00:00.000Z",
                    "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 10, "eTag": "e1"}},
                }
            ]
        }
    )


def test_keys_are_decoded_like_s3_encodes_them():
    # S3 notifications encode keys like a form: space -> '+', '+' -> %2B, unicode and () percent-encoded.
    encoded = "incoming/Summer+Sale+%282026%29%2B+Caf%C3%A9+%E2%98%95.png"
    [upload] = uploads_from_message(s3_body(encoded))
    assert upload.key == "incoming/Summer Sale (2026)+ Café ☕.png"


def test_slash_encoded_as_percent_2f_is_decoded():
    [upload] = uploads_from_message(s3_body("incoming%2Fcup.png"))
    assert upload.key == "incoming/cup.png"


def test_test_event_yields_nothing():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert uploads_from_message(body) == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"hello": 1}), json.dumps({"Records": [{}]})])
def test_malformed_messages_are_refused_clearly(body):
    with pytest.raises(MalformedMessage):
        uploads_from_message(body)


def test_non_create_events_are_skipped():
    assert uploads_from_message(s3_body("incoming/a.png", event="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize("key", ["generated/cup/abc/variant-1.jpeg", "cup.png", "incomingcup.png"])
def test_loop_guard_refuses_keys_outside_incoming(key):
    with pytest.raises(UploadRejected) as err:
        check_key(key, "incoming/")
    assert err.value.reason == "outside_incoming_prefix"


def test_folder_markers_are_not_photos():
    with pytest.raises(UploadRejected, match="folder"):
        check_key("incoming/summer/", "incoming/")


def test_sniff_real_formats():
    assert sniff_image_type(SAMPLE.read_bytes()[:64]) == "png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0" + b"\0" * 60) == "jpeg"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_type(b"\x00\x00\x00\x1cftypavif" + b"\0" * 50) == "avif"
    assert sniff_image_type(b"\x00\x00\x00\x18ftypheic" + b"\0" * 50) == "heic"
    assert sniff_image_type(b"GIF89a" + b"\0" * 10) == "gif"
    assert sniff_image_type(b"%PDF-1.7\n") is None
    assert sniff_image_type(b"") is None


def test_output_stem_is_safe():
    assert output_stem("incoming/Summer Sale (2026)+ Café ☕.png") == "Summer-Sale-2026-Caf"
    assert output_stem("incoming/☕.png") == "photo"


def test_profile_from_key():
    assert profile_from_key("incoming/summer/cup.png", "incoming/") == "summer"
    assert profile_from_key("incoming/cup.png", "incoming/") is None


def test_job_id_is_one_per_object_version():
    up = Upload("b", "incoming/a.png")
    base = job_id_for(up, "v1", "f1")
    assert base == job_id_for(Upload("b", "incoming/a.png"), "v1", "f1")
    # Another version, key or bucket is another job ...
    others = {job_id_for(up, "v2", "f1"), job_id_for(Upload("c", "incoming/a.png"), "v1", "f1")}
    others.add(job_id_for(Upload("b", "incoming/b.png"), "v1", "f1"))
    assert len({base, *others}) == 4
    # ... while settings changed between two deliveries of one version's notification are not: one charge.
    assert job_id_for(up, "v1", "f2") == base
    # With nothing to name the version (never from S3), the settings keep unrelated jobs apart.
    assert job_id_for(up, None, "f1") != job_id_for(up, None, "f2")


def test_storage_uri_only_for_safe_keys_under_the_connector_prefix():
    assert storage_uri("shop", "", "incoming/cup.png") == "storage://shop/incoming/cup.png"
    assert storage_uri("shop", "incoming/", "incoming/a/cup.png") == "storage://shop/a/cup.png"
    assert storage_uri("shop", "", "incoming/Café (1).png") is None
    assert storage_uri("shop", "other/", "incoming/cup.png") is None
    assert storage_uri("", "", "incoming/cup.png") is None
