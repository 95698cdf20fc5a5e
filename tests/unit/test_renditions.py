"""The `renditions` setting and where renditions live: the grammar and presets, refusals that name the entry,
stable keys beside the published image, the upscale rule, and the one request builder for an edit."""

from __future__ import annotations

import pytest
from backdrop.claid.request import build_edit_request
from backdrop.keys import LONGEST_PUBLISHED_NAME, published_folder
from backdrop.renditions import (
    LONGEST_RENDITION_NAME,
    MAX_SIDE,
    PRESETS,
    RenditionError,
    RenditionSpec,
    canonical,
    parse_renditions,
    plan,
)
from backdrop.setting_layers import resolve
from backdrop.settings import SettingsError


def specs(text: str, default: str = "jpeg") -> str:
    return canonical(parse_renditions(text, default))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2048 webp, 800 jpeg", "2048 webp, 800 jpeg"),
        ("2000x2500 jpeg", "2000x2500 jpeg"),
        ("2000X2500 JPG canvas", "2000x2500 jpeg canvas"),  # case, the jpg spelling
        ("2000\u00d72500 png bounds", "2000x2500 png bounds"),  # the multiplication sign, as people type it
        ("canvas 1200", None),  # a size comes first
        ("1200 bounds webp", "1200 webp bounds"),  # format and fit in either order
        ("800", "800 jpeg"),  # the published image's own format
        ("shopify", "2048 jpeg"),
        ("web", "1600 webp, 800 webp"),
        ("etsy, amazon", "2000 jpeg"),  # the same rendition twice counts once
        ("shopify, 800 webp", "2048 jpeg, 800 webp"),
        ("", ""),
        ("none", ""),
        ("  None ", ""),
    ],
)
def test_the_grammar(text, expected):
    if expected is None:
        with pytest.raises(RenditionError):
            parse_renditions(text)
    else:
        assert specs(text) == expected


def test_every_preset_is_a_valid_list():
    for name, text in PRESETS.items():
        assert parse_renditions(text), name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2048 webp, 9000 jpeg", "entry 2 '9000 jpeg': a side of 9000 px is outside 32 to 5000 px"),
        ("2048 webp, 16", "entry 2 '16': a side of 16 px"),
        ("2048 gif", "entry 1 '2048 gif': 'gif' is not a format"),
        ("2048 webp webp", "entry 1 '2048 webp webp': 'webp' is not a format"),
        ("big jpeg", "entry 1 'big jpeg': start with a size"),
        ("2048 webp,, 800", "entry 2 is empty"),
        ("2048 webp, 2048 webp canvas", "entry 2 '2048 webp canvas': 2048 webp is already asked for (crop)"),
        ("100, 200, 300, 400, 500, 600", "6 renditions asked for; at most 5"),
    ],
)
def test_a_bad_list_is_refused_naming_the_entry(text, message):
    with pytest.raises(RenditionError) as refused:
        parse_renditions(text)
    assert message in str(refused.value)


def test_the_setting_is_layered_like_every_other_and_none_turns_a_default_off():
    defaults = {"prompt": "on a table", "output_format": "png", "renditions": "shopify"}
    assert resolve(defaults, None, {}).settings.model_dump(mode="json")["renditions"] == "2048 jpeg"
    profile = {"renditions": "800 webp, 1200"}
    assert resolve(defaults, profile, {}).settings.model_dump(mode="json")["renditions"] == "800 webp, 1200 png"
    assert resolve(defaults, profile, {"renditions": "none"}).settings.renditions is None
    with pytest.raises(SettingsError) as refused:
        resolve(defaults, profile, {"renditions": "2048 tiff"})
    assert "renditions (object metadata): entry 1 '2048 tiff'" in str(refused.value)


def test_renditions_change_neither_the_fingerprint_nor_what_scene_create_gets():
    plain = resolve({"prompt": "on a table"}, None, {}).settings
    with_sizes = resolve({"prompt": "on a table"}, None, {"renditions": "web"}).settings
    assert plain.fingerprint() == with_sizes.fingerprint()


def test_stable_keys_sit_beside_the_published_image_and_cannot_meet_one():
    folder = published_folder("incoming/summer/cup.png", "incoming/", "published/")
    square = plan(
        RenditionSpec(width=2048, height=2048, format="webp"),
        position=1,
        variant=3,
        bucket="shop",
        folder=folder,
        variant_key="generated/cup/j1/variant-3.jpeg",
        source_size=(1024, 1024),
    )
    assert square.key == "published/summer/cup.png/1-2048.webp"  # beside published/summer/cup.png/1.jpeg
    assert square.from_key == "generated/cup/j1/renditions/3-2048x2048-crop.webp"
    assert square.upscale and square.spec == "2048 webp"
    tall = plan(
        RenditionSpec(width=2000, height=2500, format="jpeg", fit="canvas"),
        position=2,
        variant=1,
        bucket="shop",
        folder=folder,
        variant_key="generated/cup/j1/variant-1.jpeg",
        source_size=(1024, 1024),
    )
    assert tall.key == "published/summer/cup.png/2-2000x2500.jpeg" and tall.spec == "2000x2500 jpeg canvas"
    assert square.edit_id != tall.edit_id
    # A variant's file is `N.<ext>`, a rendition's `N-<size>.<ext>`: the dash keeps the two kinds apart.
    assert "-" not in "1.jpeg" and all("-" in r.key.rpartition("/")[2] for r in (square, tall))


@pytest.mark.parametrize(
    ("width", "height", "fit", "source", "upscale"),
    [
        (2048, 2048, "crop", (1024, 1024), True),  # above 1024: Claid's upscale
        (800, 800, "crop", (1024, 1024), False),  # smaller: a resize only
        (1024, 1024, "crop", (1024, 1024), False),
        (1024, 600, "crop", (1344, 768), False),  # crop covers the box: 1024/1344 and 600/768 are both below 1
        (1200, 800, "crop", (1344, 768), True),  # crop covers the box: 800/768 > 1
        (1200, 800, "bounds", (1344, 768), False),  # bounds fits inside it: 1200/1344 < 1
        (1500, 900, "canvas", (1344, 768), True),
        (800, 800, "crop", (None, None), False),  # a size Claid did not tell is its 1:1 render's
    ],
)
def test_a_rendition_is_upscaled_when_it_is_larger_than_its_source(width, height, fit, source, upscale):
    spec = RenditionSpec.model_validate({"width": width, "height": height, "format": "jpeg", "fit": fit})
    planned = plan(
        spec,
        position=1,
        variant=1,
        bucket="b",
        folder="published/x.png/",
        variant_key="g/x/j/variant-1.jpeg",
        source_size=source,
    )
    assert planned.upscale is upscale


def test_the_longest_published_name_is_the_longest_rendition():
    assert LONGEST_PUBLISHED_NAME == LONGEST_RENDITION_NAME == f"4-{MAX_SIDE}x{MAX_SIDE - 1}.jpeg"
    longest = RenditionSpec(width=MAX_SIDE, height=MAX_SIDE - 1, format="avif").file_name(4)
    assert len(longest) == len(LONGEST_PUBLISHED_NAME) >= len("4.jpeg")


def test_the_builder_upscales_above_the_source_and_crops_smartly():
    body = build_edit_request(
        RenditionSpec(width=2048, height=2048, format="webp"),
        "storage://shop/generated/cup/j/variant-1.jpeg",
        "storage://shop/generated/cup/j/renditions/1-2048x2048-crop.webp",
        upscale=True,
    ).body()
    assert body == {
        "input": "storage://shop/generated/cup/j/variant-1.jpeg",
        "operations": {
            "resizing": {"width": 2048, "height": 2048, "fit": {"type": "crop", "crop": "smart"}},
            "restorations": {"upscale": "smart_resize"},
        },
        "output": {"destination": "storage://shop/generated/cup/j/renditions/1-2048x2048-crop.webp", "format": "webp"},
    }
    small = build_edit_request(
        RenditionSpec(width=800, height=1000, format="jpeg", fit="canvas"), "https://e/x.jpeg", None, upscale=False
    ).body()
    assert small == {
        "input": "https://e/x.jpeg",
        "operations": {"resizing": {"width": 800, "height": 1000, "fit": "canvas"}},
        "output": {"format": "jpeg"},  # no destination: Claid's temporary bucket; no null anywhere
    }
