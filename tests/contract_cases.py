"""Request bodies with the verdict Claid's OpenAPI gives them (shared/claid-ai-background.md): the one table
that both the emulator and our request models are held to."""

from __future__ import annotations

from typing import Any

IMAGE = "storage://shop/incoming/vase.png"
TEMPLATE = "https://example.com/templates/kitchen.png"


def req(
    scene: dict[str, Any] | None = None,
    obj: dict[str, Any] | None = None,
    output: Any = None,
    **top: Any,
) -> dict[str, Any]:
    """A body with one image (cheap to generate); `output=...` replaces the whole output member."""
    body: dict[str, Any] = {
        "object": {"image_url": IMAGE} if obj is None else obj,
        "scene": {"prompt": "on a marble table"} if scene is None else scene,
        "output": {"number_of_images": 1} if output is None else output,
    }
    body.update(top)
    return body


def at(**fields: Any) -> dict[str, Any]:
    return {"image_url": IMAGE, **fields}


def fmt(spec: Any) -> dict[str, Any]:
    return {"number_of_images": 1, "format": spec}


P = "on a marble table"
VALID: dict[str, dict[str, Any]] = {
    "prompt string": req(),
    "prompt text object": req({"prompt": {"text": P}}),
    "prompt generated": req({"prompt": {"generate": True}}),
    "prompt generated with guidelines": req({"prompt": {"generate": True, "guidelines": "warm light"}}),
    "prompt scene with every field": req(
        {
            "prompt": P,
            "model": "v2-beta",
            "negative_prompt": "blurry",
            "steps": 49,
            "color": "#a1B2c3",
            "aspect_ratio": "21:9",
            "preference": "best",
        }
    ),
    "steps with model v2 (no model rule)": req({"prompt": P, "model": "v2", "steps": 1}),
    "preference with model v1 (no model rule)": req({"prompt": P, "model": "v1", "preference": "fast"}),
    "aspect ratio 9:16": req({"prompt": P, "aspect_ratio": "9:16"}),
    "template minimal": req({"template_url": TEMPLATE, "view": "top"}),
    "template with every field": req(
        {
            "template_url": TEMPLATE,
            "view": "front",
            "model": "v2",
            "template_mode": "lock",
            "color": "#000000",
            "prompt": P,
            "negative_prompt": "people",
            "steps": 10,
        }
    ),
    "template from storage with generated prompt": req(
        {"template_url": "storage://shop/templates/t.png", "view": "top", "prompt": {"generate": True}}
    ),
    "shadow minimal": req({"effect": "shadows"}),
    "shadow with every field": req(
        {"effect": "shadows", "model": "v1", "color": "transparent", "view": "auto", "aspect_ratio": "4:3"},
        output=fmt("png"),
    ),
    "shadow view front": req({"effect": "shadows", "view": "front"}),
    "absolute with every field": req(
        obj=at(placement_type="absolute", scale=0.01, rotation_degree=360, position={"x": 0, "y": 1})
    ),
    "scale integer 1": req(obj=at(scale=1)),
    "scale integer 0": req(obj=at(scale=0)),
    "original": req(obj=at(placement_type="original")),
    "padding one value": req(obj=at(placement_type="padding", padding="10%")),
    "padding two values": req(obj=at(placement_type="padding", padding="20px 10%")),
    "jpeg object": req(output=fmt({"type": "jpeg", "quality": 1, "progressive": False})),
    "png compression": req(output=fmt({"type": "png", "compression": "best"})),
    "webp bare lossless": req(output=fmt({"type": "webp", "compression": "lossless"})),
    "webp lossy quality": req(output=fmt({"type": "webp", "compression": {"type": "lossy", "quality": 100}})),
    "avif lossless object": req(output=fmt({"type": "avif", "compression": {"type": "lossless"}})),
    "avif bare lossy": req(output=fmt({"type": "avif", "compression": "lossy"})),
    "format string": req(output=fmt("webp")),
    "output as a destination string": req(output="storage://shop/generated/table/"),
    "steps as a whole-number float (JSON Schema's integer)": req({"prompt": P, "steps": 25.0}),
    "number_of_images as a whole-number float": req(output={"number_of_images": 1.0}),
    "an upper-case storage scheme": req(obj={"image_url": "STORAGE://shop/incoming/vase.png"}),
}

INVALID: dict[str, dict[str, Any]] = {
    "template with aspect_ratio": req({"template_url": TEMPLATE, "view": "top", "aspect_ratio": "1:1"}),
    "template with preference": req({"template_url": TEMPLATE, "view": "top", "preference": "fast"}),
    "template without view": req({"template_url": TEMPLATE}),
    "template with view auto": req({"template_url": TEMPLATE, "view": "auto"}),
    "template_mode without template": req({"prompt": P, "template_mode": "lock"}),
    "prompt with view": req({"prompt": P, "view": "top"}),
    "shadow with prompt": req({"effect": "shadows", "prompt": P}),
    "shadow with negative_prompt": req({"effect": "shadows", "negative_prompt": "blurry"}),
    "shadow with template": req({"effect": "shadows", "template_url": TEMPLATE, "view": "top"}),
    "effect glow": req({"effect": "glow"}),
    "prose-only aspect ratio 7:4": req({"prompt": P, "aspect_ratio": "7:4"}),
    "model v3": req({"prompt": P, "model": "v3"}),
    "steps 50": req({"prompt": P, "steps": 50}),
    "steps 0": req({"prompt": P, "steps": 0}),
    "steps not an integer": req({"prompt": P, "steps": 10.5}),
    "guidelines of 2 chars": req({"prompt": {"generate": True, "guidelines": "ab"}}),
    "guidelines of 1001 chars": req({"prompt": {"generate": True, "guidelines": "x" * 1001}}),
    "text with generate": req({"prompt": {"text": P, "generate": True}}),
    "guidelines without generate": req({"prompt": {"guidelines": "warm light"}}),
    "generate false": req({"prompt": {"generate": False}}),
    "prompt of 2 chars": req({"prompt": "ab"}),
    "negative prompt of 2 chars": req({"prompt": P, "negative_prompt": "ab"}),
    "colour by name": req({"prompt": P, "color": "white"}),
    "transparent in a prompt scene": req({"prompt": P, "color": "transparent"}, output=fmt("png")),
    "template_mode freeze": req({"template_url": TEMPLATE, "view": "top", "template_mode": "freeze"}),
    "preference slow": req({"prompt": P, "preference": "slow"}),
    "original with scale": req(obj=at(placement_type="original", scale=0.5)),
    "original with position": req(obj=at(placement_type="original", position={"x": 0.5, "y": 0.5})),
    "padding without padding": req(obj=at(placement_type="padding")),
    "absolute with padding": req(obj=at(padding="10%")),
    "padding over half": req(obj=at(placement_type="padding", padding="60%")),
    "scale 0.005": req(obj=at(scale=0.005)),
    "scale 0.0": req(obj=at(scale=0.0)),
    "rotation 361": req(obj=at(rotation_degree=361)),
    "position x 1.5": req(obj=at(position={"x": 1.5, "y": 0.5})),
    "position with z": req(obj=at(position={"x": 0.5, "y": 0.5, "z": 0})),
    "placement centre": req(obj=at(placement_type="centre")),
    "object with an unknown key": req(obj=at(opacity=0.5)),
    "image_url missing": req(obj={"scale": 0.5}),
    "image_url ftp": req(obj={"image_url": "ftp://example.com/x.png"}),
    "unknown top-level key": req(metadata={"sku": "1"}),
    "unknown output key": req(output={"number_of_images": 1, "metadata": {"sku": "1"}}),
    "number_of_images 5": req(output={"number_of_images": 5}),
    "number_of_images 0": req(output={"number_of_images": 0}),
    "jpeg quality 0": req(output=fmt({"type": "jpeg", "quality": 0})),
    "jpeg with compression": req(output=fmt({"type": "jpeg", "compression": "best"})),
    "png compression max": req(output=fmt({"type": "png", "compression": "max"})),
    "lossless with quality": req(output=fmt({"type": "webp", "compression": {"type": "lossless", "quality": 50}})),
    "avif compression zip": req(output=fmt({"type": "avif", "compression": "zip"})),
    "format gif": req(output=fmt("gif")),
    "format object without type": req(output=fmt({"quality": 80})),
    "destination s3": req(output={"destination": "s3://shop/generated/"}),
    "scene missing": {"object": {"image_url": IMAGE}, "output": {"number_of_images": 1}},
    "object missing": {"scene": {"prompt": P}, "output": {"number_of_images": 1}},
    "output null (leave it out for the defaults)": {
        "object": {"image_url": IMAGE},
        "scene": {"prompt": P},
        "output": None,
    },
    "a model of null": req({"prompt": P, "model": None}),
    "number_of_images as a boolean": req(output={"number_of_images": True}),
}

CASES: list[tuple[str, dict[str, Any], bool]] = [
    *((name, body, True) for name, body in VALID.items()),
    *((name, body, False) for name, body in INVALID.items()),
]
