"""The emulator's image edit over real HTTP: real pixels for every fit, upscale and format; written to connected
storage or the temporary bucket; the same scopes, rate limit, bill and faults as scene/create. And the places the
emulator was laxer than Claid for scene/create (issue 18)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from backdrop_kit.emulator import ClaidEmulator, EmulatorConfig
from backdrop_kit.moto_server import MotoServer
from PIL import Image, ImageFilter, ImageStat

SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"
AUTH = {"Authorization": "Bearer local-test-key"}
VASE = "generated/vase/job1/variant-1.png"  # 420 x 640
SQUARE = "generated/cup/job2/variant-1.png"  # 1024 x 1024


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    server = MotoServer()
    url = server.start()
    client = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.create_bucket(Bucket="shop")
    client.put_object(Bucket="shop", Key=VASE, Body=(SAMPLES / "teal-vase-cutout.png").read_bytes())
    square = io.BytesIO()
    Image.open(SAMPLES / "espresso-cup.png").convert("RGB").resize((1024, 1024)).save(square, "PNG")
    client.put_object(Bucket="shop", Key=SQUARE, Body=square.getvalue())
    yield url, client
    server.stop()


@pytest.fixture
def emulator(s3) -> Iterator[ClaidEmulator]:
    config = EmulatorConfig(
        s3_endpoint_url=s3[0],
        rate_per_second=0,
        rate_per_minute=0,
        api_keys=frozenset({"local-test-key", "scenes-only", "edits-only"}),
        key_scopes={"scenes-only": frozenset({"image_generation"}), "edits-only": frozenset({"image_editing"})},
    )
    with ClaidEmulator(config) as emu:
        emu.add_storage("shop", bucket="shop")
        yield emu


def edit(emu: ClaidEmulator, body: dict[str, Any], headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(emu.base_url + "/v1/image/edit", json=body, headers=headers, timeout=60)


def picture(s3: tuple[str, Any], answer: httpx.Response) -> Image.Image:
    out = answer.json()["data"]["output"]
    if "object_key" in out:
        data = s3[1].get_object(Bucket="shop", Key=out["object_key"])["Body"].read()
    else:
        data = httpx.get(out["tmp_url"]).content
    image = Image.open(io.BytesIO(data))
    assert (out["width"], out["height"]) == image.size  # the answer says what was made
    return image


def resized(source: str, **resizing: Any) -> dict[str, Any]:
    return {"input": f"storage://shop/{source}", "operations": {"resizing": resizing}, "output": {"format": "png"}}


@pytest.mark.parametrize(
    ("resizing", "size"),
    [
        ({}, (420, 640)),  # no side: unchanged
        ({"width": 300, "height": 200}, (300, 200)),  # crop: exactly the box
        ({"width": 300, "height": 200, "fit": {"type": "crop", "crop": "smart"}}, (300, 200)),
        ({"width": 300, "height": 300, "fit": "cover"}, (300, 457)),  # covers the box, may be larger
        ({"width": 300, "height": 300, "fit": "bounds"}, (197, 300)),  # inside the box, may be smaller
        ({"width": 300, "height": 300, "fit": "canvas"}, (300, 300)),  # inside, on a box-sized canvas
        ({"width": 300, "height": 300, "fit": {"type": "outpaint", "feathering": "10%"}}, (300, 300)),
        ({"width": 300}, (300, 640)),  # one side with crop: the other stays, the image is cropped
        ({"width": 210, "fit": "bounds"}, (210, 320)),  # one side with another fit: the other follows
        ({"width": "auto", "height": 320}, (210, 320)),
        ({"width": "50%", "height": "50%"}, (210, 320)),
        ({"width": "200%", "height": "auto"}, (840, 1280)),
    ],
)
def test_each_fit_makes_the_size_the_contract_says(emulator, s3, resizing, size):
    answer = edit(emulator, resized(VASE, **resizing))
    assert answer.status_code == 200, answer.text
    assert picture(s3, answer).size == size


def test_canvas_places_the_whole_image_and_crop_cuts_it():
    """Nothing is stretched: canvas keeps the whole vase (white bands at the sides), crop fills the box."""
    from backdrop_kit.emulator.edit_schema import parse_edit
    from backdrop_kit.emulator.edits import edit as make

    vase = Image.open(SAMPLES / "teal-vase-cutout.png")
    canvas = make(vase, parse_edit(resized(VASE, width=400, height=400, fit="canvas")))
    assert canvas.getpixel((5, 200)) == (255, 255, 255, 255) and canvas.getpixel((200, 200))[:3] != (255, 255, 255)
    crop = make(vase, parse_edit(resized(VASE, width=400, height=400)))
    assert crop.size == (400, 400) and crop.getpixel((5, 200)) != (255, 255, 255, 255)


def _sharpness(image: Image.Image) -> float:
    return ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).var[0]


def test_a_bigger_size_is_upscaled_when_asked_and_interpolated_when_not(emulator, s3):
    body = resized(SQUARE, width=2048, height=2048)
    plain = edit(emulator, body)
    upscaled = edit(
        emulator, {**body, "operations": {**body["operations"], "restorations": {"upscale": "smart_resize"}}}
    )
    assert plain.status_code == upscaled.status_code == 200
    smooth, sharp = picture(s3, plain), picture(s3, upscaled)
    assert smooth.size == sharp.size == (2048, 2048)
    assert _sharpness(sharp) > _sharpness(smooth)  # the stand-in for Claid's model sharpens; interpolation does not
    assert [c.credits_charged for c in emulator.calls] == [1.0, 2.0]  # an upscale is priced as one


@pytest.mark.parametrize(
    ("output", "pillow_format", "mode"),
    [
        ({"format": "jpeg"}, "JPEG", "RGB"),
        ({}, "JPEG", "RGB"),  # the contract's default output: {"format": "jpeg"}
        ({"format": {"type": "webp", "compression": "lossless"}}, "WEBP", "RGBA"),
        ({"format": {"type": "avif", "compression": {"type": "lossy", "quality": 40}}}, "AVIF", None),
        ({"format": {"type": "tiff", "compression": "lossy"}}, "TIFF", "RGB"),
        ({"format": "tiff", "metadata": {"dpi": 300}}, "TIFF", None),
        ({"format": "jpeg", "metadata": {"dpi": 150, "color_space": {"type": "CMYK"}}}, "JPEG", "CMYK"),
    ],
)
def test_formats_and_metadata(emulator, s3, output, pillow_format, mode):
    answer = edit(
        emulator, {"input": f"storage://shop/{VASE}", "operations": {}, **({"output": output} if output else {})}
    )
    assert answer.status_code == 200, answer.text
    image = picture(s3, answer)
    assert image.format == pillow_format and (mode is None or image.mode == mode)
    dpi = output.get("metadata", {}).get("dpi")
    if dpi:
        assert round(image.info["dpi"][0]) == dpi
    assert answer.json()["data"]["output"]["format"] == pillow_format


def test_connected_storage_writes_the_file_it_was_given_and_a_folder_keeps_the_input_name(emulator, s3):
    to_file = edit(emulator, {**resized(VASE, width=100), "output": "storage://shop/generated/vase/job1/r/1-100.png"})
    to_folder = edit(
        emulator,
        {**resized(VASE, width=100), "output": {"destination": "storage://shop/generated/r/", "format": "webp"}},
    )
    file_out, folder_out = to_file.json()["data"]["output"], to_folder.json()["data"]["output"]
    assert file_out["object_key"] == "generated/vase/job1/r/1-100.png"
    assert folder_out["object_key"] == "generated/r/variant-1.webp"  # the input's name, the output's extension
    assert folder_out["claid_storage_uri"] == "storage://shop/generated/r/variant-1.webp"
    for out in (file_out, folder_out):
        assert "tmp_url" not in out  # what does not apply is left out, not null
        s3[1].head_object(Bucket="shop", Key=out["object_key"])
    data = to_file.json()["data"]
    assert set(data) == {"input", "output", "profiling"} and data["input"]["width"] == 420


def test_temporary_bucket_answers_a_tmp_url_and_no_storage_fields(emulator, s3):
    answer = edit(emulator, resized(VASE, width=100))
    out = answer.json()["data"]["output"]
    assert set(out) == {"ext", "mps", "mime", "format", "width", "height", "tmp_url"}
    assert picture(s3, answer).size == (100, 640)


def test_scopes_a_key_without_image_editing_is_403(emulator):
    body = resized(VASE, width=100)
    refused = edit(emulator, body, {"Authorization": "Bearer scenes-only"})
    assert refused.status_code == 403 and refused.json()["error_message"] == "Not enough permissions."
    assert edit(emulator, body, {"Authorization": "Bearer edits-only"}).status_code == 200
    scene = {"object": {"image_url": f"storage://shop/{VASE}"}, "scene": {"prompt": "on a table"}}
    scene_answer = httpx.post(
        emulator.base_url + "/v1/scene/create", json=scene, headers={"Authorization": "Bearer edits-only"}
    )
    assert scene_answer.status_code == 403 and scene_answer.headers["x-request-id"]


def test_the_bearer_scheme_is_case_insensitive(emulator):
    assert edit(emulator, resized(VASE, width=100), {"Authorization": "bearer local-test-key"}).status_code == 200
    assert edit(emulator, resized(VASE, width=100), {"Authorization": "BEARER local-test-key"}).status_code == 200


def test_scene_and_edit_share_one_rate_limit(s3):
    # The minute's window, not the second's: three calls (one of them a real generation) always fit in a minute,
    # while on a busy machine they need not fit in one second.
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=s3[0], rate_per_second=0, rate_per_minute=2)) as emu:
        emu.add_storage("shop", bucket="shop")
        scene = {
            "object": {"image_url": f"storage://shop/{VASE}"},
            "scene": {"prompt": "on a table"},
            "output": {"number_of_images": 1},
        }
        first = httpx.post(emu.base_url + "/v1/scene/create", json=scene, headers=AUTH)
        second = edit(emu, resized(VASE, width=100))
        third = edit(emu, resized(VASE, width=100))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert third.json()["detail"]["error_code"] == "2001" and "Retry-After" not in third.headers
    assert third.headers["RateLimit-Remaining"] == "-1"


def test_out_of_credits_is_402_for_an_edit_and_charges_nothing(s3):
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=s3[0], credits=1.5)) as emu:
        emu.add_storage("shop", bucket="shop")
        assert edit(emu, resized(VASE, width=100)).status_code == 200
        upscale = resized(VASE, width=800)
        upscale["operations"]["restorations"] = {"upscale": "smart_resize"}
        assert edit(emu, upscale).status_code == 402
        assert emu.stats()["credits_charged"] == 1.0 and emu.stats()["edits"] == 1


def test_a_lost_edit_was_made_written_and_charged(s3):
    config = EmulatorConfig(s3_endpoint_url=s3[0], fault_rate=1.0, fault_kinds=("lost",))
    with ClaidEmulator(config) as emu:
        emu.add_storage("shop", bucket="shop")
        with pytest.raises(httpx.RemoteProtocolError):
            edit(emu, {**resized(VASE, width=100), "output": "storage://shop/generated/lost/1-100.jpeg"})
        [call] = emu.calls
        assert (call.kind, call.answered, call.credits_charged) == ("edit", False, 1.0)
        s3[1].head_object(Bucket="shop", Key="generated/lost/1-100.jpeg")


def test_an_output_past_the_pixel_bound_is_400_and_free(emulator):
    answer = edit(emulator, resized(VASE, width=20000, height=20000))
    assert answer.status_code == 400 and "operations.resizing" in answer.json()["error_details"]
    assert emulator.stats()["credits_charged"] == 0


def test_not_emulated_operations_are_refused_by_name(emulator):
    answer = edit(emulator, {"input": f"storage://shop/{VASE}", "operations": {"privacy": {"blur": True}}})
    assert answer.status_code == 422 and "operations.privacy" in answer.json()["error_details"]


def test_edit_latency_is_spent_before_the_answer(s3):
    config = EmulatorConfig(s3_endpoint_url=s3[0], latency=1.0, rate_per_second=0, rate_per_minute=0, seed=3)
    with ClaidEmulator(config) as emu:
        emu.add_storage("shop", bucket="shop")
        assert edit(emu, resized(VASE, width=100)).status_code == 200
        [call] = emu.calls
        assert 0 < call.latency < 1.0 and call.finished - call.started >= call.latency  # shorter than a generation


# --- scene/create: where the emulator was laxer than Claid --------------------------------------------------------
SCENE = {"object": {"image_url": f"storage://shop/{VASE}"}, "scene": {"prompt": "on a table"}}


def scene(emu: ClaidEmulator, body: Any, raw: bytes | None = None) -> httpx.Response:
    return httpx.post(
        emu.base_url + "/v1/scene/create",
        content=raw if raw is not None else json.dumps(body).encode(),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )


def test_output_null_is_refused_and_charges_nothing(emulator):
    answer = scene(emulator, {**SCENE, "output": None})
    assert answer.status_code == 422 and "output" in answer.json()["error_details"]
    assert emulator.stats()["credits_charged"] == 0


def test_a_lone_surrogate_in_a_prompt_is_answered(emulator):
    answer = scene(
        emulator,
        None,
        raw=b'{"object": {"image_url": "storage://shop/' + VASE.encode() + b'"}, '
        b'"scene": {"prompt": "on a table \\ud800"}}',
    )
    assert answer.status_code == 422 and answer.json()["error_details"] == {
        "scene.prompt": ["not valid Unicode text (a lone surrogate)"]
    }


def test_whole_number_floats_and_an_upper_case_scheme_are_accepted(emulator, s3):
    url = s3[1].generate_presigned_url("get_object", Params={"Bucket": "shop", "Key": VASE})
    body = {
        "object": {"image_url": "HTTP" + url.removeprefix("http")},
        "scene": {"prompt": "on a table", "steps": 25.0},
        "output": {"number_of_images": 1.0},
    }
    answer = scene(emulator, body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["data"]["output"]) == 1
    assert scene(emulator, {**body, "scene": {"prompt": "on a table", "steps": 25.5}}).status_code == 422
