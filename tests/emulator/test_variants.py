"""The emulator makes each distinct variant once and answers the same bytes again; anything that changes the
pixels or the encoding is a different variant."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from backdrop_kit.emulator import images, variants
from backdrop_kit.emulator.schema import OutputSpec, Placement, Scene
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples" / "espresso-cup.png"
SIZE = (256, 192)  # small: the test is about what is reused, not about megapixels


@pytest.fixture
def composed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The indexes images.compose was really called for (the cache emptied first)."""
    monkeypatch.setattr(variants, "_kept", variants.OrderedDict())
    made: list[int] = []
    real = images.compose

    def counting(product, scene, placement, size, index):  # type: ignore[no-untyped-def]
        made.append(index)
        return real(product, scene, placement, size, index)

    monkeypatch.setattr(images, "compose", counting)
    return made


def _variant(index: int = 0, output: OutputSpec | None = None, sha: str = "a" * 64, prompt: str = "on oak") -> bytes:
    product = Image.open(SAMPLE)
    scene = Scene(mode="prompt", prompt=prompt)
    return variants.variant(sha, product, scene, Placement(scale=0.5), SIZE, index, output or OutputSpec())


def test_the_same_variant_is_composed_once_and_answered_with_the_same_bytes(composed):
    first = _variant()
    again = _variant(output=OutputSpec(destination="storage://elsewhere/", number_of_images=1))
    assert again == first
    assert composed == [0]
    picture = Image.open(io.BytesIO(first))
    assert (picture.format, picture.size) == ("PNG", SIZE)


def test_what_changes_the_image_makes_a_new_one(composed):
    base = _variant()
    assert _variant(index=1) != base
    assert _variant(prompt="on marble") != base
    assert _variant(sha="b" * 64) == base  # same pixels given, but a different input is composed anew
    jpeg = _variant(output=OutputSpec(format="jpeg", options={"quality": 60}))
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    assert composed == [0, 1, 0, 0, 0]


def test_it_keeps_a_bounded_number(composed, monkeypatch):
    monkeypatch.setattr(variants, "MAX_KEPT", 2)
    for index in range(3):
        _variant(index=index)
    _variant(index=0)  # the oldest was let go: made again
    assert composed == [0, 1, 2, 0]
