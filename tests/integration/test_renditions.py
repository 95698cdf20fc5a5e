"""Storefront renditions on the local stack (moto + the Claid emulator over HTTP, handlers run by the runner):
publish -> renditions at their stable keys at the right pixel sizes, the ledger equal to Claid's bill, a new choice
replacing them in place (and paying nothing for one already made), Claid refusing the edits while the published
image stays, and a budget that refuses what it cannot cover."""

from __future__ import annotations

import json
from typing import Any

from backdrop.jobs import current_month
from backdrop.store.items import as_attributes, from_attributes
from backdrop.store.ledger import DynamoLedger
from backdrop_kit.emulator import EmulatorConfig

from .conftest import Pipeline
from .test_publishing import by_type, published, select

PHOTO = "incoming/summer/cup.png"
FOLDER = "published/summer/cup.png/"
SIZES = {"2048.webp": (2048, 2048), "800.jpeg": (800, 800), "600x800.png": (600, 800)}


def month(p: Pipeline) -> dict[str, Any]:
    return DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())


def edits(p: Pipeline) -> list[Any]:
    return [c for c in p.stack.emulator.calls if c.kind == "edit"]


def planned(p: Pipeline, source_key: str) -> dict[str, dict[str, Any]]:
    """The photo's record: each rendition's stable key, with the file Claid made it in."""
    item = p.stack.client("dynamodb").get_item(
        TableName=p.stack.app_table,
        Key=as_attributes({"pk": f"PUBLISHED#{p.bucket}/{source_key}", "sk": "SELECTION"}),
        ConsistentRead=True,
    )["Item"]
    return {r["key"]: r for r in json.loads(from_attributes(item)["renditions"])}


def body(p: Pipeline, key: str) -> bytes:
    return bytes(p.s3.get_object(Bucket=p.bucket, Key=key)["Body"].read())


def test_published_images_get_their_renditions_and_a_new_choice_replaces_them_in_place(make_pipeline):
    p: Pipeline = make_pipeline(parameters={"DefaultRenditions": "shopify"})
    p.stack.put_profile("summer", {"renditions": "2048 webp, 800 jpeg, 600x800 png canvas"})  # over the default
    p.upload(PHOTO, metadata={"backdrop-number-of-images": "2", "backdrop-publish": "all"})
    p.drain()
    renditions = {f"{FOLDER}{n}-{name}": size for n in (1, 2) for name, size in SIZES.items()}
    assert set(published(p)) == {f"{FOLDER}1.jpeg", f"{FOLDER}2.jpeg", *renditions}
    for key, size in renditions.items():
        image = p.image(key)
        assert (image.size, image.format) == (size, {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}[key[-4:].strip(".")])
    head = p.s3.head_object(Bucket=p.bucket, Key=f"{FOLDER}2-2048.webp")
    assert (head["ContentType"], head["Metadata"]["backdrop-rendition"]) == ("image/webp", "2048 webp")
    assert (head["Metadata"]["backdrop-variant"], head["Metadata"]["backdrop-selection-version"]) == ("2", "1")
    # Claid read the variants it wrote and wrote each rendition beside them: no image bytes through our functions.
    assert all(c.image_url.startswith("storage://") and "/renditions/" in str(c.destination) for c in edits(p))
    # Six edits asked for at once, under Claid's 4 a second: the renditions function takes its starts from the
    # processor's schedule (one item, RATELIMIT#claid), so Claid never had to say 429.
    assert [c.status for c in p.stack.emulator.calls] == [200] * 7

    events = p.stack.bus_events()
    [announced] = by_type(events, "Variants Published")
    assert announced["rendition_count"] == 6 and {r["key"] for r in announced["renditions"]} == set(renditions)
    [ready] = by_type(events, "Renditions Published")
    assert ready["version"] == 1 and ready["failed"] == []
    assert sorted((r["key"], r["width"], r["height"]) for r in ready["renditions"]) == sorted(
        (key, *size) for key, size in renditions.items()
    )
    # Money: 2048 is upscaled (2 credits), the others only resized (1); each edit reserved and counted once, on a
    # line of its own beside the generation's; together they are what Claid charged.
    assert sorted(c.credits_charged for c in edits(p)) == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    assert sum(r["credits"] for r in ready["renditions"]) == ready["credits"]["used"] == 8
    usage = month(p)
    total = usage["total"]
    assert (total["credits_used"], total["edit_credits_used"], total["edits"]) == (4, 8, 6)
    assert total["credits_used"] + total["edit_credits_used"] == p.stack.emulator.stats()["credits_charged"] == 12
    assert (total["credits_reserved"], total["committed"]) == (0, 12)
    assert usage["profiles"]["summer"]["edit_credits_used"] == 8

    # A storefront keeps variant 2 alone: its renditions move to position 1 (made already: nothing is paid), and
    # every key the new choice no longer asks for goes.
    select(p, {"job_id": p.jobs()[PHOTO]["job_id"], "variants": [2]})
    p.drain()
    now = planned(p, PHOTO)
    assert (
        set(published(p))
        == {f"{FOLDER}1.jpeg", *(f"{FOLDER}1-{name}" for name in SIZES)}
        == {
            f"{FOLDER}1.jpeg",
            *now,
        }
    )
    assert body(p, f"{FOLDER}1-2048.webp") == body(p, now[f"{FOLDER}1-2048.webp"]["from_key"])
    assert now[f"{FOLDER}1-2048.webp"]["variant"] == 2 and len(edits(p)) == 6
    events = p.stack.bus_events()
    [again] = by_type(events, "Renditions Published")
    assert (again["version"], again["credits"]["used"], len(again["renditions"])) == (2, 0, 3)
    [moved] = by_type(events, "Variants Published")
    assert {f"{FOLDER}2.jpeg", f"{FOLDER}2-2048.webp", f"{FOLDER}2-800.jpeg"} <= set(moved["removed"])
    assert month(p)["total"]["edit_credits_used"] == 8 and p.queue_depth("RenditionsDLQ") == 0


def test_claid_refusing_edits_keeps_the_published_image_and_a_budget_refuses_what_it_cannot_cover(make_pipeline):
    # The API key may generate but not edit: Claid answers 403 to every edit.
    p: Pipeline = make_pipeline(
        budget=5, emulator=EmulatorConfig(key_scopes={"local-test-key": frozenset({"image_generation"})})
    )
    meta = {"backdrop-number-of-images": "1", "backdrop-publish": "first"}
    p.upload("incoming/vase.png", metadata={**meta, "backdrop-renditions": "800 webp"})
    p.drain()
    assert published(p) == ["published/vase.png/1.jpeg"]  # the published image stays
    [failed] = by_type(p.stack.bus_events(), "Renditions Failed")
    [problem] = failed["failed"]
    assert problem["key"] == "published/vase.png/1-800.webp" and failed["renditions"] == []
    assert (problem["problem"]["code"], problem["problem"]["claid_status"]) == ("claid_auth", 403)
    assert problem["problem"]["claid_error_code"] == "403"
    assert problem["problem"]["claid_request_id"] == edits(p)[0].request_id
    # Nothing charged, nothing held, and no verdict kept: a key with the image_editing scope lifts it.
    assert (month(p)["total"].get("edits_failed", 0), month(p)["total"]["committed"]) == (0, 2)

    # Budget 5, 2 committed: the cup's image (2) and its 800 px rendition (1) fit; its 2048 px one (2) does not.
    p.stack.emulator.config.key_scopes = {}
    p.upload("incoming/cup.png", metadata={**meta, "backdrop-renditions": "800, 2048"})
    p.drain()
    assert "published/cup.png/1-2048.jpeg" not in published(p)
    assert {"published/cup.png/1.jpeg", "published/cup.png/1-800.jpeg"} <= set(published(p))
    events = p.stack.bus_events()
    [partial] = by_type(events, "Renditions Failed")
    assert [r["key"] for r in partial["renditions"]] == ["published/cup.png/1-800.jpeg"]
    assert [(f["key"], f["problem"]["code"]) for f in partial["failed"]] == [
        ("published/cup.png/1-2048.jpeg", "budget_exhausted")
    ]
    # The cup's image crossed 80% of the budget, its 800 px rendition 100%; the 2048 px one found it spent.
    alerts = {(a["kind"], a["threshold_percent"]) for a in by_type(events, "Budget Alert")}
    assert alerts == {("budget_threshold", 80), ("budget_threshold", 100), ("budget_exhausted", None)}
    total = month(p)["total"]
    assert total["committed"] == total["credits_used"] + total["edit_credits_used"] == 5
    assert total["committed"] == p.stack.emulator.stats()["credits_charged"]
    assert p.queue_depth("RenditionsDLQ") == 0  # an answer, not a failure to retry
