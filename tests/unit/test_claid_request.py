"""The one request builder: every settings mode maps to the contract's shape."""

from backdrop.claid.models import GeneratedPrompt, PromptScene
from backdrop.claid.request import build_scene_request
from backdrop.settings import Settings


def test_text_scene_with_storage_destination():
    body = build_scene_request(
        Settings(prompt="on a wooden table", number_of_images=2, output_format="png", png_compression="best"),
        "storage://shop/incoming/cup.png",
        "storage://shop/generated/cup/abc/",
    ).body()
    assert body == {
        "object": {"image_url": "storage://shop/incoming/cup.png", "placement_type": "absolute"},
        "scene": {"prompt": "on a wooden table", "model": "v1"},
        "output": {
            "destination": "storage://shop/generated/cup/abc/",
            "number_of_images": 2,
            "format": {"type": "png", "compression": "best"},
        },
    }


def test_number_of_images_is_always_sent_and_temporary_bucket_omits_destination():
    body = build_scene_request(Settings(prompt="abc"), "https://example.com/x.png", None).body()
    assert body["output"] == {"number_of_images": 4, "format": "jpeg"}


def test_autoprompt_with_guidelines():
    request = build_scene_request(
        Settings(autoprompt=True, guidelines="summer", model="v2", preference="best"), "https://e/x.png", None
    )
    assert request.body()["scene"]["prompt"] == {"generate": True, "guidelines": "summer"}
    assert isinstance(request.scene, PromptScene) and isinstance(request.scene.prompt, GeneratedPrompt)


def test_template_and_shadow_scenes():
    template = build_scene_request(
        Settings(template_url="https://e/t.png", template_mode="lock", view="top"), "https://e/x.png", None
    ).body()
    assert template["scene"] == {
        "template_url": "https://e/t.png",
        "view": "top",
        "model": "v1",
        "template_mode": "lock",
    }
    shadows = build_scene_request(Settings(effect="shadows", color="#ffffff"), "https://e/x.png", None).body()
    assert shadows["scene"] == {"effect": "shadows", "model": "v1", "color": "#ffffff"}


def test_placement_and_formats():
    s = Settings(
        prompt="abc",
        scale=0.6,
        position_x=0.5,
        position_y=0.7,
        rotation_degree=15,
        output_format="avif",
        compression="lossy",
        quality=60,
    )
    body = build_scene_request(s, "https://e/x.png", None).body()
    assert body["object"]["position"] == {"x": 0.5, "y": 0.7}
    assert body["object"]["scale"] == 0.6 and body["object"]["rotation_degree"] == 15
    assert body["output"]["format"] == {"type": "avif", "compression": {"type": "lossy", "quality": 60}}
    jpeg = build_scene_request(Settings(prompt="abc", jpeg_quality=85, jpeg_progressive=True), "https://e/x", None)
    assert jpeg.body()["output"]["format"] == {"type": "jpeg", "quality": 85, "progressive": True}
