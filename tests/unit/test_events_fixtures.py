"""The sample events in events/ are the shapes the code reads."""

import json
from pathlib import Path

import pytest
from backdrop.events import GenerationDetail
from backdrop.uploads import MalformedMessage, uploads_from_message

EVENTS = Path(__file__).resolve().parents[2] / "events"


def records(name):
    return json.loads((EVENTS / name).read_text())["Records"]


def test_put_event():
    [record] = records("sqs-s3-put.json")
    assert record["eventSource"] == "aws:sqs"
    [upload] = uploads_from_message(record["body"])
    assert upload.key == "incoming/espresso-cup.png" and upload.version_id


def test_special_key_decodes_to_the_original():
    [record] = records("sqs-s3-special-key.json")
    assert "%2B" in record["body"] and "+" in record["body"]
    [upload] = uploads_from_message(record["body"])
    assert upload.key == "incoming/Summer Sale (2026)+ Café ☕.png"


def test_test_event_is_nothing_to_do():
    [record] = records("sqs-s3-test-event.json")
    assert uploads_from_message(record["body"]) == []


def test_batch_has_three_uploads_one_outside_incoming():
    keys = [uploads_from_message(r["body"])[0].key for r in records("sqs-s3-batch.json")]
    assert keys[1] == "incoming/summer/teal vase.png"
    assert [k.startswith("incoming/") for k in keys] == [True, True, False]


def test_malformed_is_refused():
    [record] = records("sqs-malformed.json")
    with pytest.raises(MalformedMessage):
        uploads_from_message(record["body"])


@pytest.mark.parametrize("name", ["eventbridge-generation-succeeded.json", "eventbridge-generation-rejected.json"])
def test_recorder_events_validate(name):
    event = json.loads((EVENTS / name).read_text())
    assert event["source"] == "backdrop"
    detail = GenerationDetail.model_validate(event["detail"])
    assert detail.detail_type == event["detail-type"]


def test_the_select_variants_sample_is_a_valid_command_from_a_storefront():
    from backdrop.publishing import SelectVariantsCommand

    event = json.loads((EVENTS / "eventbridge-select-variants.json").read_text())
    assert event["detail-type"] == "Select Variants" and event["source"] != "backdrop"
    assert SelectVariantsCommand.model_validate(event["detail"]).variants == [3]


def test_the_renditions_queue_message_is_a_variants_published_event_with_renditions():
    from backdrop.editing import detail_of
    from backdrop.publishing import VariantsPublishedDetail

    [record] = records("sqs-variants-published.json")
    assert record["eventSourceARN"].endswith("RenditionsQueue")
    detail = VariantsPublishedDetail.model_validate(detail_of(record["body"]))
    assert detail.rendition_count == len(detail.renditions) == 2
    assert [r.key for r in detail.renditions] == [
        "published/mugs/espresso-cup.png/1-2048.webp",
        "published/mugs/espresso-cup.png/1-800.jpeg",
    ]
