"""The Claid emulator over real HTTP: the contract's answers for valid and invalid requests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from backdrop_kit.emulator import ClaidEmulator, EmulatorConfig
from backdrop_kit.emulator.images import canvas_size
from backdrop_kit.moto_server import MotoServer
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"
KEY = "local-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, object]]:
    server = MotoServer()
    url = server.start()
    client = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.create_bucket(Bucket="shop")
    client.put_object(Bucket="shop", Key="incoming/cup.png", Body=(SAMPLES / "espresso-cup.png").read_bytes())
    client.put_object(Bucket="shop", Key="incoming/vase.png", Body=(SAMPLES / "teal-vase-cutout.png").read_bytes())
    client.put_object(Bucket="shop", Key="incoming/notes.png", Body=b"plain text")
    yield url, client
    server.stop()


@pytest.fixture
def emulator(s3) -> Iterator[ClaidEmulator]:
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=s3[0], rate_per_second=0, rate_per_minute=0)) as emu:
        emu.add_storage("shop", bucket="shop")
        yield emu


def post(emu: ClaidEmulator, body: object, headers: dict[str, str] | None = None, path: str = "/v1-ea/scene/create"):
    return httpx.post(emu.base_url + path, json=body, headers=AUTH if headers is None else headers, timeout=30)


def body(**overrides: object) -> dict[str, object]:
    request: dict[str, object] = {
        "object": {"image_url": "storage://shop/incoming/vase.png"},
        "scene": {"prompt": "on a marble table"},
        "output": {"number_of_images": 1},
    }
    request.update(overrides)
    return request


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"scene": {"prompt": "on a table"}}, "object"),
        (body(object={"image_url": "ftp://x/y.png"}), "object.image_url"),
        (body(object={"image_url": "storage://shop/incoming/vase.png", "scale": 2}), "object.scale"),
        (
            body(object={"image_url": "storage://shop/incoming/vase.png", "position": {"x": 1.5, "y": 0}}),
            "object.position.x",
        ),
        (
            body(object={"image_url": "storage://shop/incoming/vase.png", "placement_type": "centre"}),
            "object.placement_type",
        ),
        (body(scene={"prompt": "ab"}), "scene.prompt"),
        (body(scene={"prompt": "on a table", "aspect_ratio": "7:4"}), "scene.aspect_ratio"),
        (body(scene={"prompt": "on a table", "view": "top"}), "scene.view"),
        (body(scene={"template_url": "https://e.example/t.png"}), "scene.view"),
        (body(scene={"prompt": "on a table", "steps": 50}), "scene.steps"),
        (body(scene={"prompt": "on a table", "color": "white"}), "scene.color"),
        (body(scene={"prompt": {"generate": False}}), "scene.prompt.generate"),
        (body(scene={"prompt": "on a table", "mood": "happy"}), "scene.mood"),
        (body(output={"number_of_images": 5}), "output.number_of_images"),
        (body(output={"format": "gif"}), "output.format"),
        (body(output={"format": {"type": "jpeg", "quality": 0}}), "output.format.quality"),
        (body(output={"format": {"type": "webp", "compression": {"type": "zip"}}}), "output.format.compression"),
        (body(output={"destination": "s3://shop/generated/"}), "output.destination"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(emulator, request_body, field):
    response = post(emulator, request_body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert (answer["error_code"], answer["error_type"]) == ("9000", "validation")
    assert field in answer["error_details"]
    assert response.headers["x-request-id"]
    assert emulator.stats()["credits_charged"] == 0


def test_auth_missing_and_wrong_key_are_401(emulator):
    missing = post(emulator, body(), headers={})
    wrong = post(emulator, body(), headers={"Authorization": "Bearer nope"})
    for answer in (missing, wrong):
        assert answer.status_code == 401 and answer.headers["x-request-id"]
        assert {k: answer.json()[k] for k in ("error_code", "error_type")} == {
            "error_code": "111",
            "error_type": "auth",
        }
        assert answer.json()["error_details"] == {}
    assert missing.json()["error_message"] == "Authorization is required."


def test_unparsable_json_is_400(emulator):
    response = httpx.post(emulator.base_url + "/v1-ea/scene/create", content=b"{nope", headers=AUTH)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("image_url", "code"),
    [
        ("storage://shop/incoming/notes.png", 400),
        ("storage://shop/incoming/missing.png", 400),
        ("storage://elsewhere/incoming/vase.png", 400),
    ],
)
def test_object_not_retrievable_is_400(emulator, image_url, code):
    assert post(emulator, body(object={"image_url": image_url})).status_code == code


def test_connected_storage_output_and_response_shape(emulator, s3):
    response = post(
        emulator,
        body(
            output={
                "destination": "storage://shop/generated/vase/job1/",
                "number_of_images": 2,
                "format": {"type": "png", "compression": "fast"},
            }
        ),
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["input"]["width"] == 420 and data["input"]["height"] == 640
    assert len(data["output"]) == 2
    for i, out in enumerate(data["output"], start=1):
        assert out["object_key"] == f"generated/vase/job1/variant-{i}.png"
        assert out["object_bucket"] == "shop" and "tmp_url" not in out  # what does not apply is left out, not null
        assert out["claid_storage_uri"] == f"storage://shop/generated/vase/job1/variant-{i}.png"
        assert (out["format"], out["mime"], out["width"], out["height"]) == ("PNG", "image/png", 1024, 1024)
        img = decode(s3[1].get_object(Bucket="shop", Key=out["object_key"])["Body"].read())
        assert (img.format, img.size) == ("PNG", (1024, 1024))
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "x-request-id"):
        assert header.lower() in {h.lower() for h in response.headers}
    assert emulator.stats()["credits_charged"] == 4


@pytest.mark.parametrize(
    ("fmt", "pillow_format"),
    [
        ("jpeg", "JPEG"),
        ({"type": "jpeg", "quality": 60, "progressive": True}, "JPEG"),
        ("png", "PNG"),
        ({"type": "webp", "compression": {"type": "lossless"}}, "WEBP"),
        ({"type": "avif", "compression": {"type": "lossy", "quality": 50}}, "AVIF"),
    ],
)
def test_formats_decode_at_the_ratio_size(emulator, fmt, pillow_format):
    response = post(
        emulator,
        body(scene={"prompt": "on a table", "aspect_ratio": "16:9"}, output={"format": fmt, "number_of_images": 1}),
    )
    assert response.status_code == 200, response.text
    [out] = response.json()["data"]["output"]
    img = decode(httpx.get(out["tmp_url"]).content)
    assert img.format == pillow_format and img.size == canvas_size("16:9") == (1344, 768)
    assert (out["width"], out["height"]) == img.size


def test_variants_differ_and_follow_the_prompt(emulator):
    def images(prompt: str) -> list[bytes]:
        outs = post(emulator, body(scene={"prompt": prompt}, output={"number_of_images": 2, "format": "png"})).json()
        return [decode(httpx.get(o["tmp_url"]).content).tobytes() for o in outs["data"]["output"]]

    a1, a2 = images("on a beach at noon")
    b1, _ = images("in a snowy forest")
    assert a1 != a2 and a1 != b1


def test_autoprompt_costs_half_a_credit_more(emulator):
    post(emulator, body(scene={"prompt": {"generate": True, "guidelines": "summer"}}))
    assert emulator.stats()["credits_charged"] == 2.5


def test_out_of_credits_is_402_and_charges_nothing(s3):
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=s3[0], credits=3)) as emu:
        emu.add_storage("shop", bucket="shop")
        assert post(emu, body(output={"number_of_images": 1})).status_code == 200
        response = post(emu, body(output={"number_of_images": 1}))
        assert response.status_code == 402 and response.json() == {
            "error_code": "402",
            "error_type": "billing",
            "error_message": "No API calls left",
            "error_details": {},
        }
        assert emu.stats()["credits_charged"] == 2 and emu.stats()["credits_left"] == 1


def test_rate_limit_answers_429_with_headers(s3):
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=s3[0], rate_per_second=2, rate_per_minute=100)) as emu:
        emu.add_storage("shop", bucket="shop")
        answers = [post(emu, body(output={"number_of_images": 1})) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    limited = answers[2]
    assert limited.status_code == 429
    assert limited.json() == {
        "detail": {
            "error_code": "2001",
            "error_type": "general",
            "error_message": "Too many requests",
            "error_details": {},
        }
    }
    assert limited.headers["RateLimit-Limit"] == "2, 100;w=60, 2;w=1"
    assert limited.headers["RateLimit-Remaining"] == "-1" and int(limited.headers["RateLimit-Reset"]) >= 1
    assert "Retry-After" not in limited.headers  # Claid sends RateLimit-Reset only: the client's fallback runs


def test_faults_are_reproducible_with_a_seed(s3):
    def sequence() -> list[str | None]:
        config = EmulatorConfig(
            s3_endpoint_url=s3[0],
            fault_rate=0.5,
            fault_kinds=("500", "429"),
            seed=7,
            rate_per_second=0,
            rate_per_minute=0,
        )
        with ClaidEmulator(config) as emu:
            emu.add_storage("shop", bucket="shop")
            for _ in range(8):
                post(emu, body(output={"number_of_images": 1}))
            return [c.fault for c in emu.calls]

    first = sequence()
    assert first == sequence() and any(first) and not all(first)


def test_drop_closes_the_connection_without_an_answer(s3):
    with ClaidEmulator(EmulatorConfig(s3_endpoint_url=s3[0], fault_rate=1.0, fault_kinds=("drop",))) as emu:
        emu.add_storage("shop", bucket="shop")
        with pytest.raises(httpx.RemoteProtocolError):
            post(emu, body())
        assert emu.stats()["credits_charged"] == 0


def test_tmp_urls_expire(emulator):
    now = [1000.0]
    emulator.tmp.clock = lambda: now[0]
    emulator.config.tmp_url_ttl_seconds = 60
    [out] = post(emulator, body()).json()["data"]["output"]
    assert httpx.get(out["tmp_url"]).status_code == 200
    now[0] += 61
    assert httpx.get(out["tmp_url"]).status_code == 410


def test_https_and_presigned_inputs_are_fetched(emulator, s3):
    url = s3[1].generate_presigned_url("get_object", Params={"Bucket": "shop", "Key": "incoming/cup.png"})
    response = post(emulator, body(object={"image_url": url, "placement_type": "original"}))
    assert response.status_code == 200
    assert emulator.calls[-1].image_url == url.split("?")[0]  # the signature is not kept


def test_storage_api(emulator):
    base = emulator.base_url
    assert httpx.get(base + "/v1/storage/storage-types", headers=AUTH).status_code == 200
    created = httpx.post(
        base + "/v1/storage/storages",
        headers=AUTH,
        json={
            "name": "brand",
            "type": "s3",
            "parameters": {
                "bucket": "shop",
                "path": "brand/",
                "credentials": {"access_key": "a", "secret_access_key": "b"},
            },
        },
    )
    assert created.status_code == 200 and "credentials" not in created.json()["data"]["parameters"]
    again = httpx.post(
        base + "/v1/storage/storages",
        headers=AUTH,
        json={
            "name": "brand",
            "type": "s3",
            "parameters": {"bucket": "shop", "credentials": {"access_key": "a", "secret_access_key": "b"}},
        },
    )
    assert again.status_code == 409
    invalid = httpx.post(base + "/v1/storage/storages", headers=AUTH, json={"name": "", "type": "ftp"})
    assert invalid.status_code == 422 and {"name", "type"} <= set(invalid.json()["error_details"])
    listed = httpx.get(base + "/v1/storage/storages", headers=AUTH).json()["data"]
    assert {s["name"] for s in listed} == {"shop", "brand"}
    assert httpx.get(base + "/v1/storage/storages").status_code == 401


def test_documented_and_common_paths_both_work(emulator):
    assert post(emulator, body(), path="/v1/scene/create").status_code == 200


def test_the_api_key_is_never_echoed(emulator):
    response = post(emulator, body(object={"image_url": "ftp://x"}))
    assert KEY not in response.text


def test_lost_answer_was_generated_written_and_charged(s3):
    config = EmulatorConfig(s3_endpoint_url=s3[0], fault_rate=1.0, fault_kinds=("lost",))
    with ClaidEmulator(config) as emu:
        emu.add_storage("shop", bucket="shop")
        request = body(output={"number_of_images": 2, "destination": "storage://shop/generated/lost/"})
        with pytest.raises(httpx.RemoteProtocolError):
            post(emu, request)
        [call] = emu.calls
        assert (call.status, call.answered, call.images_returned) == (200, False, 2)
        assert emu.stats()["credits_charged"] == emu.stats()["charged_without_answer"] == 4
        keys = s3[1].list_objects_v2(Bucket="shop", Prefix="generated/lost/")["Contents"]
        assert len(keys) == 2


def test_latency_is_spent_before_the_answer(s3):
    config = EmulatorConfig(s3_endpoint_url=s3[0], latency=0.3, rate_per_second=0, rate_per_minute=0, seed=5)
    with ClaidEmulator(config) as emu:
        emu.add_storage("shop", bucket="shop")
        assert post(emu, body()).status_code == 200
        [call] = emu.calls
        assert call.latency > 0 and call.finished - call.started >= call.latency


def test_a_client_that_hangs_up_is_still_charged(s3):
    config = EmulatorConfig(s3_endpoint_url=s3[0], latency=1.0, latency_sigma=0.0, rate_per_second=0, rate_per_minute=0)
    with ClaidEmulator(config) as emu:
        emu.add_storage("shop", bucket="shop")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(emu.base_url + "/v1-ea/scene/create", json=body(), headers=AUTH, timeout=0.2)
        assert emu.wait_until_idle(timeout=30)  # Claid finishes the request the client gave up on
        [call] = emu.calls
        assert call.credits_charged == 2 and call.images_returned == 1
