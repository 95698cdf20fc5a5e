"""The emulator against the image edit contract table (in process and over HTTP), and our request builder against
the emulator: every edit the builder makes for a rendition is one the emulator, like Claid, takes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from backdrop.claid.request import build_edit_request
from backdrop.renditions import FITS, FORMATS, RenditionSpec
from backdrop_kit.emulator import ClaidEmulator, EmulatorConfig
from backdrop_kit.emulator.edit_schema import Refused, parse_edit
from backdrop_kit.emulator.schema import Invalid
from backdrop_kit.moto_server import MotoServer

from tests.edit_contract_cases import CASES, STATUS

SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"
AUTH = {"Authorization": "Bearer local-test-key"}


@pytest.mark.parametrize(("body", "verdict"), [(b, v) for _, b, v in CASES], ids=[n for n, _, _ in CASES])
def test_emulator_schema_gives_the_contracts_verdict(body, verdict):
    if verdict == "valid":
        parse_edit(body)
        return
    with pytest.raises(Invalid if verdict == "invalid" else Refused) as refused:
        parse_edit(body)
    assert refused.value.details  # every refusal names at least one field


@pytest.fixture(scope="module")
def emulator() -> Iterator[ClaidEmulator]:
    server = MotoServer()
    url = server.start()
    s3 = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    s3.create_bucket(Bucket="shop")
    s3.put_object(
        Bucket="shop", Key="generated/vase/job1/variant-1.png", Body=(SAMPLES / "teal-vase-cutout.png").read_bytes()
    )
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=url, rate_per_second=0, rate_per_minute=0)) as emu:
        emu.add_storage("shop", bucket="shop")
        yield emu
    server.stop()


def test_every_body_over_http_gets_the_contracts_status_and_error_shape(emulator):
    wrong = []
    with httpx.Client(base_url=emulator.base_url, headers=AUTH, timeout=60) as http:
        for name, body, verdict in CASES:
            answer = http.post("/v1/image/edit", json=body)
            assert answer.headers["x-request-id"], name
            if answer.status_code != STATUS[verdict]:
                wrong.append((name, answer.status_code, answer.text[:200]))
            elif verdict != "valid":
                error = answer.json()
                assert set(error) == {"error_code", "error_type", "error_message", "error_details"}, name
                assert error["error_details"], name
                if verdict == "invalid":
                    assert (error["error_code"], error["error_type"]) == ("9000", "validation"), name
    assert not wrong
    # Only what Claid answered with an image is charged: one credit an edit, two an upscaled one.
    charged = [c for c in emulator.calls if c.kind == "edit" and c.credits_charged]
    assert len(charged) == sum(1 for _, _, verdict in CASES if verdict == "valid")
    assert all(c.credits_charged == (2.0 if c.upscaled else 1.0) for c in charged)


def _renditions() -> Iterator[RenditionSpec]:
    for (width, height), fmt, fit in itertools.product(((800, 800), (2048, 2048), (2000, 2500)), FORMATS, FITS):
        yield RenditionSpec.model_validate({"width": width, "height": height, "format": fmt, "fit": fit})


def test_every_edit_the_builder_makes_is_one_the_emulator_takes():
    built = 0
    for spec, upscale, destination in itertools.product(
        _renditions(), (False, True), (None, "storage://shop/generated/cup/j/renditions/1-800x800-crop.jpeg")
    ):
        body = build_edit_request(spec, "storage://shop/generated/cup/j/variant-1.jpeg", destination, upscale=upscale)
        try:
            request = parse_edit(body.body())
        except (Invalid, Refused) as exc:
            pytest.fail(f"{spec} -> {body.body()} refused: {exc.details}")
        assert (request.upscale is not None) == upscale and request.output.format == spec.format
        built += 1
    assert built == 3 * len(FORMATS) * len(FITS) * 4
