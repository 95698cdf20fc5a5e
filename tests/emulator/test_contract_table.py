"""The emulator against the contract table (in process and over HTTP), and our request builder against the
emulator: every body the builder makes from valid settings is one the emulator, like Claid, takes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from backdrop.claid.request import build_scene_request
from backdrop.settings import ASPECT_RATIOS, Settings
from backdrop_kit.emulator import ClaidEmulator, EmulatorConfig
from backdrop_kit.emulator import schema as emulator_schema
from backdrop_kit.emulator.images import compose
from backdrop_kit.emulator.schema import Invalid, Placement, Scene, parse
from backdrop_kit.moto_server import MotoServer
from PIL import Image

from tests.contract_cases import CASES

SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"
AUTH = {"Authorization": "Bearer local-test-key"}
IDS = [name for name, _, _ in CASES]


@pytest.mark.parametrize(("body", "valid"), [(b, v) for _, b, v in CASES], ids=IDS)
def test_emulator_schema_gives_the_contracts_verdict(body, valid):
    if valid:
        parse(body)
    else:
        with pytest.raises(Invalid) as refused:
            parse(body)
        assert refused.value.details  # every refusal names at least one field


@pytest.fixture(scope="module")
def emulator() -> Iterator[ClaidEmulator]:
    server = MotoServer()
    url = server.start()
    s3 = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    s3.create_bucket(Bucket="shop")
    s3.put_object(Bucket="shop", Key="incoming/vase.png", Body=(SAMPLES / "teal-vase-cutout.png").read_bytes())
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=url, rate_per_second=0, rate_per_minute=0)) as emu:
        emu.add_storage("shop", bucket="shop")
        yield emu
    server.stop()


def test_every_body_over_http_gets_the_contracts_status_and_error_shape(emulator):
    wrong = []
    with httpx.Client(base_url=emulator.base_url, headers=AUTH, timeout=60) as http:
        for name, body, valid in CASES:
            answer = http.post("/v1/scene/create", json=body)
            assert answer.headers["x-request-id"], name
            if answer.status_code != (200 if valid else 422):
                wrong.append((name, answer.status_code, answer.text[:200]))
            elif not valid:
                error = answer.json()
                assert set(error) == {"error_code", "error_type", "error_message", "error_details"}, name
                assert (error["error_code"], error["error_type"]) == ("9000", "validation"), name
                assert error["error_details"], name
    assert not wrong


def test_defaults_the_contract_documents_are_applied():
    plain = parse({"object": {"image_url": "https://e.example/x.png"}, "scene": {"effect": "shadows"}})
    assert (plain.scene.model, plain.scene.view, plain.scene.aspect_ratio) == ("v1", "auto", "1:1")
    assert (plain.output.number_of_images, plain.output.format) == (4, "png")
    assert plain.output.options == {"compression": "optimal"}
    for name, options in {
        "jpeg": {"quality": 85, "progressive": True},
        "webp": {"lossless": False, "quality": 75},
        "avif": {"lossless": False, "quality": 50},
    }.items():
        body = {
            "object": {"image_url": "https://e.example/x.png"},
            "scene": {"prompt": "abc"},
            "output": {"format": name},
        }
        assert parse(body).output.options == options
    placement = parse({"object": {"image_url": "https://e.example/x.png"}, "scene": {"prompt": "abc"}}).placement
    assert (placement.placement_type, placement.scale, placement.x, placement.y) == ("absolute", 1.0, 0.5, 0.5)


def _settings_matrix() -> Iterator[dict[str, Any]]:
    scenes: list[dict[str, Any]] = [
        {"prompt": "on a table", "negative_prompt": "blurry", "steps": 20, "color": "#ffffff", "preference": "best"},
        {"autoprompt": True, "guidelines": "warm light", "model": "v2-beta"},
        {"template_url": "https://e.example/t.png", "view": "front", "template_mode": "adjust", "prompt": "abc"},
        {"template_url": "storage://shop/t.png", "view": "top", "negative_prompt": "people", "steps": 5},
        {"template_url": "https://e.example/t.png", "view": "top", "autoprompt": True, "guidelines": "bright"},
        {"effect": "shadows", "view": "auto", "color": "#101010"},
        {"effect": "shadows", "color": "transparent", "output_format": "png"},
    ]
    placements: list[dict[str, Any]] = [
        {},
        {"placement_type": "absolute", "scale": 0.01, "rotation_degree": 90, "position_x": 0.1, "position_y": 1},
        {"placement_type": "original"},
        {"placement_type": "padding", "padding": "12px 5%"},
    ]
    outputs: list[dict[str, Any]] = [
        {"output_format": "jpeg", "jpeg_quality": 90, "jpeg_progressive": False},
        {"output_format": "png", "png_compression": "fast"},
        {"output_format": "webp", "compression": "lossless"},
        {"output_format": "avif", "quality": 40},
        {"output_format": "webp", "compression": "lossy", "quality": 60},
    ]
    for scene, placement, output in itertools.product(scenes, placements, outputs):
        values = {**output, **placement, **scene}
        if scene.get("output_format", output["output_format"]) != output["output_format"]:
            continue
        for ratio in ASPECT_RATIOS if "template_url" not in scene else [None]:
            yield {**values, "aspect_ratio": ratio} if ratio else values


def test_every_body_the_builder_makes_is_one_the_emulator_takes():
    built = 0
    for values in _settings_matrix():
        settings = Settings.model_validate(values)
        for destination in (None, "storage://shop/generated/x/"):
            body = build_scene_request(settings, "storage://shop/incoming/vase.png", destination).body()
            try:
                emulator_schema.parse(body)
            except Invalid as exc:
                pytest.fail(f"{values} -> {body} refused: {exc.details}")
            built += 1
    assert built > 500


def test_position_y_zero_is_the_bottom_edge():
    product = Image.new("RGBA", (40, 40), (255, 0, 0, 255))
    scene = Scene("prompt", prompt="abc")

    def red_rows(y: float) -> float:
        out = compose(product, scene, Placement(scale=0.1, x=0.5, y=y), (200, 200), 0).convert("RGB")
        rows = [r for r in range(200) if out.getpixel((100, r)) == (255, 0, 0)]
        return sum(rows) / len(rows)

    assert red_rows(0.1) > 150 and red_rows(0.9) < 50  # pixel rows count down from the top


def test_padding_keeps_the_product_inside_the_margin():
    product = Image.new("RGBA", (100, 100), (255, 0, 0, 255))
    placed = compose(
        product, Scene("prompt", prompt="abc"), Placement("padding", padding=((25, "%"), (25, "%"))), (200, 200), 0
    )
    red = [(x, y) for x in range(200) for y in range(200) if placed.convert("RGB").getpixel((x, y)) == (255, 0, 0)]
    assert min(red) >= (50, 50) and max(red) <= (149, 149)
