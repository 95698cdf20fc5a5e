"""Image edit request bodies with the verdict shared/claid-image-edit.md gives them: the one table both the
emulator and our request models are held to.

Verdicts: "valid" (200), "invalid" (422: the OpenAPI's schema, and the resizing rules the page states), "refused"
(400: what the schema lets through and Claid's server turns away, "2048px" or -1 as a side). Our models refuse
both of the last two: the builder sends integers and "NNN%" strings only.
"""

from __future__ import annotations

from typing import Any, Literal

Verdict = Literal["valid", "invalid", "refused"]
INPUT = "storage://shop/generated/vase/job1/variant-1.png"


def edit(operations: Any = None, output: Any = None, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"input": INPUT, "operations": {} if operations is None else operations}
    if output is not None:
        body["output"] = output
    body.update(top)
    return body


def resize(**fields: Any) -> dict[str, Any]:
    return {"resizing": fields}


def fmt(spec: Any) -> dict[str, Any]:
    return {"format": spec}


VALID: dict[str, dict[str, Any]] = {
    "no operations": edit(),
    "no operations, no output": {"input": INPUT, "operations": {}},
    "both sides in pixels": edit(resize(width=400, height=300)),
    "width only (crop keeps the height)": edit(resize(width=300)),
    "height only with bounds (the width follows)": edit(resize(height=320, fit="bounds")),
    "width auto": edit(resize(width="auto", height=320)),
    "the same percentage on both sides": edit(resize(width="50%", height="50%")),
    "a percentage and auto": edit(resize(width="25%", height="auto")),
    "fit crop": edit(resize(width=300, height=300, fit="crop")),
    "fit cover": edit(resize(width=300, height=200, fit="cover")),
    "fit canvas": edit(resize(width=400, height=300, fit="canvas")),
    "fit outpaint": edit(resize(width=500, height=400, fit="outpaint")),
    "smart crop object": edit(resize(width=300, height=200, fit={"type": "crop", "crop": "smart"})),
    "centre crop object": edit(resize(width=300, height=200, fit={"type": "crop", "crop": "center"})),
    "crop object without crop": edit(resize(width=300, height=200, fit={"type": "crop"})),
    "bounds object": edit(resize(width=300, height=200, fit={"type": "bounds"})),
    "outpaint with feathering and outpaint_by": edit(
        resize(width=500, height=500, fit={"type": "outpaint", "feathering": "15%", "outpaint_by": "10%"})
    ),
    "outpaint by pixels": edit(resize(width=500, height=500, fit={"type": "outpaint", "outpaint_by": "64px 32px"})),
    "a rendition: 2048 square, smart_resize": edit(
        {"resizing": {"width": 1024, "height": 1024}, "restorations": {"upscale": "smart_resize"}}
    ),
    "upscale smart_enhance": edit({"restorations": {"upscale": "smart_enhance"}}),
    "upscale faces with 200%": edit(
        {"resizing": {"width": "200%", "height": "200%"}, "restorations": {"upscale": "faces"}}
    ),
    "upscale photo v3": edit({"restorations": {"upscale": {"type": "photo", "version": "3"}}}),
    "decompress and polish": edit({"restorations": {"decompress": "auto", "polish": True}}),
    "padding, two values": edit({"padding": "5% 25%"}),
    "tiff lossless object": edit(output=fmt({"type": "tiff", "compression": "lossless"})),
    "tiff string": edit(output=fmt("tiff")),
    "jpeg object": edit(output=fmt({"type": "jpeg", "quality": 90, "progressive": False})),
    "webp lossy quality": edit(output=fmt({"type": "webp", "compression": {"type": "lossy", "quality": 80}})),
    "avif lossless": edit(output=fmt({"type": "avif", "compression": "lossless"})),
    "png compression": edit(output=fmt({"type": "png", "compression": "fast"})),
    "metadata dpi and CMYK with a profile": edit(
        output={"format": "jpeg", "metadata": {"dpi": 300, "color_space": {"type": "CMYK", "color_profile": "FOGRA39"}}}
    ),
    "metadata RGB": edit(output={"metadata": {"color_space": "RGB"}}),
    "destination file": edit(output={"destination": "storage://shop/generated/vase/job1/renditions/a.webp"}),
    "destination folder": edit(output={"destination": "storage://shop/generated/vase/job1/renditions/"}),
    "output as a destination string": edit(output="storage://shop/generated/vase/job1/renditions/b.jpeg"),
    "a whole-number float as a side (JSON Schema's integer)": edit(resize(width=300.0, height=200)),
    "an upper-case scheme": edit(input="STORAGE://shop/generated/vase/job1/variant-1.png"),
}

INVALID: dict[str, dict[str, Any]] = {
    "input missing": {"operations": {}},
    "operations missing": {"input": INPUT},
    "an unknown top-level key": edit(webhook="https://shop.example/hook"),
    "an unknown operation": edit({"rotate": 90}),
    "output null": {"input": INPUT, "operations": {}, "output": None},
    "operations null": {"input": INPUT, "operations": None},
    "fit null": edit(resize(width=300, fit=None)),
    "both sides auto": edit(resize(width="auto", height="auto")),
    "pixels and a percentage": edit(resize(width=300, height="50%")),
    "two different percentages": edit(resize(width="50%", height="25%")),
    "fit stretch": edit(resize(width=300, height=300, fit="stretch")),
    "the prose's crop object without type": edit(resize(width=300, height=300, fit={"crop": "smart"})),
    "crop edge": edit(resize(width=300, height=300, fit={"type": "crop", "crop": "edge"})),
    "cover with a crop key": edit(resize(width=300, height=300, fit={"type": "cover", "crop": "smart"})),
    "feathering in pixels": edit(resize(width=500, height=500, fit={"type": "outpaint", "feathering": "15px"})),
    "resizing with an unknown key": edit(resize(width=300, scale=2)),
    "upscale x4": edit({"restorations": {"upscale": "x4"}}),
    "photo upscale without a version": edit({"restorations": {"upscale": {"type": "photo"}}}),
    "photo upscale version 1 (deprecated)": edit({"restorations": {"upscale": {"type": "photo", "version": "1"}}}),
    "decompress max": edit({"restorations": {"decompress": "max"}}),
    "polish as a string": edit({"restorations": {"polish": "yes"}}),
    "format jpg": edit(output=fmt("jpg")),
    "format gif": edit(output=fmt("gif")),
    "tiff compression zip": edit(output=fmt({"type": "tiff", "compression": "zip"})),
    "jpeg quality 0": edit(output=fmt({"type": "jpeg", "quality": 0})),
    "an unknown metadata key": edit(output={"metadata": {"exif": True}}),
    "dpi 72.5": edit(output={"metadata": {"dpi": 72.5}}),
    "colour space sRGB": edit(output={"metadata": {"color_space": "sRGB"}}),
    "RGB object with a profile": edit(output={"metadata": {"color_space": {"type": "RGB", "color_profile": "x"}}}),
    "destination s3://": edit(output={"destination": "s3://shop/renditions/a.webp"}),
    "input ftp://": edit(input="ftp://example.com/a.png"),
    "input empty": edit(input=""),
    "input of 4,097 characters": edit(input="https://e.example/" + "a" * 4079),
    "the OpenAPI's own background default (use_original_alpha)": edit({"background": {"use_original_alpha": True}}),
    "an unknown output key": edit(output={"number_of_images": 2}),
}

REFUSED: dict[str, dict[str, Any]] = {
    "a width of 2048px": edit(resize(width="2048px", height=300)),
    "a width of -1": edit(resize(width=-1, height=300)),
    "a height of 0": edit(resize(width=300, height=0)),
    "a percentage of 0%": edit(resize(width="0%", height="auto")),
}

CASES: list[tuple[str, dict[str, Any], Verdict]] = [
    *((name, body, "valid") for name, body in VALID.items()),
    *((name, body, "invalid") for name, body in INVALID.items()),
    *((name, body, "refused") for name, body in REFUSED.items()),
]
STATUS: dict[Verdict, int] = {"valid": 200, "invalid": 422, "refused": 400}
