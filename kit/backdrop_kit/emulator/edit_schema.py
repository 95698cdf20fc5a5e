"""The emulator's own reading of the Image Editing contract (shared/claid-image-edit.md): every object closed, no
field null, the resizing rules, every fit, upscale and format form. Written from the contract page, not from the
backdrop client's models, so that a mistake in the client shows up as an error here rather than being mirrored.

Three verdicts: valid; `Invalid` (422, what the OpenAPI's schema refuses, plus the resizing rules the page states);
`Refused` (400, what the schema lets through and Claid's server checks: `"2048px"` or `-1` as a side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from backdrop_kit.emulator.schema import FORMAT_DEFAULTS, Invalid, _Checker, format_options

FORMATS = ("jpeg", "png", "webp", "avif", "tiff")
FITS = ("crop", "cover", "bounds", "canvas", "outpaint")
UPSCALES = ("smart_enhance", "smart_resize", "faces", "digital_art", "photo")
DECOMPRESS = ("moderate", "strong", "auto")
PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
PERCENT_OR_PIXELS = re.compile(r"^(\d+(?:\.\d+)?)(%|px)$")
STORAGE_DEST = re.compile(r"^storage://([^/\s]+)/(.*)$", re.IGNORECASE)
# Operations the contract names without their fields, and backdrop does not use: refused by name rather than
# ignored, so nothing passes here that the emulator has not checked. (The OpenAPI's own default for background
# names use_original_alpha, which is not an allowed property: that default is refused by Claid too.)
NOT_EMULATED = ("background", "adjustments", "privacy", "generative")


class Refused(Exception):
    """Past the schema, refused by Claid's server (400)."""

    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in details.items()))
        self.details = details


@dataclass
class Side:
    """One side of a resizing: pixels, a share of the input's side, or auto (follows the aspect ratio)."""

    pixels: int | None = None
    share: float | None = None
    auto: bool = False


@dataclass
class Resize:
    width: Side | None = None
    height: Side | None = None
    fit: str = "crop"
    crop: str = "center"  # crop fit: center or smart
    feathering: float = 0.0  # outpaint: per cent
    outpaint_by: tuple[tuple[float, str], tuple[float, str]] | None = None


@dataclass
class EditOutputSpec:
    destination: str | None = None
    format: str = "jpeg"  # the contract's default: {"format": "jpeg"}
    options: dict[str, Any] = field(default_factory=lambda: dict(FORMAT_DEFAULTS["jpeg"]))
    dpi: int | None = None
    color_space: str = "RGB"


@dataclass
class EditRequest:
    input: str
    resize: Resize | None = None
    upscale: str | None = None  # the upscale model; None: a bigger size is plain interpolation
    decompress: str | None = None
    polish: bool = False
    padding: tuple[float, float] | None = None  # per cent (height, width)
    background: str | None = None  # what canvas and padding fill with (None: white)
    output: EditOutputSpec = field(default_factory=EditOutputSpec)


def _nulls(value: Any, path: str, found: list[str]) -> None:
    """Every field that is null, by path: the contract takes no null anywhere (leave the key out)."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if item is None:
                found.append(where)
            else:
                _nulls(item, where, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _nulls(item, f"{path}.{index}", found)


def parse_edit(body: Any) -> EditRequest:
    """The request as the contract validates it, defaults filled in. Raises Invalid (422) listing every problem the
    schema finds, then Refused (400) for what only the server checks."""
    c = _Checker()
    nulls: list[str] = []
    _nulls(body, "", nulls)
    for path in nulls:
        c.fail(path, "null is not allowed: leave the key out")
    top = c.obj(body, "body", {"output"}, {"input", "operations"})
    request = EditRequest(input="")
    if "input" in top and top["input"] is not None:
        request.input = c.url(top["input"], "input") or ""
    refused: dict[str, list[str]] = {}
    if "operations" in top and top["operations"] is not None:
        _operations(c, top["operations"], request, refused)
    if top.get("output") is not None:
        request.output = _output(c, top["output"])
    if c.details:
        raise Invalid(c.details)
    if refused:
        raise Refused(refused)
    return request


def _operations(c: _Checker, value: Any, request: EditRequest, refused: dict[str, list[str]]) -> None:
    allowed = {"resizing", "restorations", "padding", *NOT_EMULATED}
    ops = c.obj(value, "operations", allowed)
    for name in NOT_EMULATED:
        if name in ops:
            c.fail(
                f"operations.{name}", "not emulated: the contract page does not describe it (backdrop never sends it)"
            )
    if ops.get("resizing") is not None:
        request.resize = _resizing(c, ops["resizing"], refused)
    if ops.get("restorations") is not None:
        r = c.obj(ops["restorations"], "operations.restorations", {"upscale", "decompress", "polish"})
        if r.get("upscale") is not None:
            request.upscale = _upscale(c, r["upscale"])
        if r.get("decompress") is not None:
            request.decompress = c.choice(r["decompress"], "operations.restorations.decompress", DECOMPRESS)
        if r.get("polish") is not None:
            if not isinstance(r["polish"], bool):
                c.fail("operations.restorations.polish", "must be a boolean")
            request.polish = r["polish"] is True
    if ops.get("padding") is not None:
        request.padding = _padding(c, ops["padding"])


def _side(c: _Checker, value: Any, path: str, refused: dict[str, list[str]]) -> Side | None:
    if isinstance(value, bool):
        c.fail(path, "must be an integer or a string")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's integer: 2048.0 is 2048
    if isinstance(value, int):
        if value < 1:
            refused.setdefault(path, []).append(f"{value} is not a size in pixels")
            return None
        return Side(pixels=value)
    if not isinstance(value, str):
        c.fail(path, "must be an integer, auto or a percentage")
        return None
    if value == "auto":
        return Side(auto=True)
    match = PERCENT.match(value)
    if match is None or float(match.group(1)) <= 0:
        # The schema's string branch takes any text; the server takes auto or a percentage.
        refused.setdefault(path, []).append(f"{value!r}: give pixels as an integer, auto, or a percentage like 200%")
        return None
    return Side(share=float(match.group(1)) / 100)


def _resizing(c: _Checker, value: Any, refused: dict[str, list[str]]) -> Resize:
    path = "operations.resizing"
    r = c.obj(value, path, {"width", "height", "fit"})
    resize = Resize()
    raw = {name: r[name] for name in ("width", "height") if r.get(name) is not None}
    sides = {name: _side(c, v, f"{path}.{name}", refused) for name, v in raw.items()}
    resize.width, resize.height = sides.get("width"), sides.get("height")
    if raw.get("width") == "auto" and raw.get("height") == "auto":
        c.fail(path, "width and height cannot both be auto")
    kinds = {"pixels" if s.pixels is not None else f"{s.share}%" for s in sides.values() if s and not s.auto}
    if len(kinds) > 1:
        c.fail(
            path, "width and height must be one kind: pixels on both, or one percentage (the other the same or auto)"
        )
    if r.get("fit") is not None:
        _fit(c, r["fit"], f"{path}.fit", resize)
    return resize


def _fit(c: _Checker, value: Any, path: str, resize: Resize) -> None:
    if isinstance(value, str):
        resize.fit = c.choice(value, path, FITS) or "crop"
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in FITS:
        # `{"crop": "smart"}` without a type is the older prose's form: the OpenAPI refuses it.
        c.fail(f"{path}.type", f"must be one of {', '.join(FITS)}")
        return
    resize.fit = str(kind)
    if kind == "crop":
        f = c.obj(value, path, {"crop"}, {"type"})
        if f.get("crop") is not None:
            resize.crop = c.choice(f["crop"], f"{path}.crop", ("center", "smart")) or "center"
    elif kind == "outpaint":
        f = c.obj(value, path, {"feathering", "outpaint_by"}, {"type"})
        if f.get("feathering") is not None:
            match = PERCENT.match(f["feathering"]) if isinstance(f["feathering"], str) else None
            if match is None:
                c.fail(f"{path}.feathering", "must be a percentage like 15%")
            else:
                resize.feathering = float(match.group(1))
        if f.get("outpaint_by") is not None:
            resize.outpaint_by = _two_sizes(c, f["outpaint_by"], f"{path}.outpaint_by")
    else:
        c.obj(value, path, set(), {"type"})


def _two_sizes(c: _Checker, value: Any, path: str) -> tuple[tuple[float, str], tuple[float, str]] | None:
    """One size for every side or two (vertical, horizontal), each `N%` or `Npx`."""
    parts = value.split(" ") if isinstance(value, str) else []
    matches = [PERCENT_OR_PIXELS.match(p) for p in parts]
    if not 1 <= len(parts) <= 2 or not all(matches):
        c.fail(path, "must be one or two sizes like 10% or 1024px 512px")
        return None
    sizes = [(float(m.group(1)), m.group(2)) for m in matches if m]
    return sizes[0], sizes[-1]


def _upscale(c: _Checker, value: Any) -> str | None:
    path = "operations.restorations.upscale"
    if isinstance(value, str):
        return c.choice(value, path, UPSCALES)
    u = c.obj(value, path, set(), {"type", "version"})
    if "type" in u and u["type"] != "photo":
        c.fail(f"{path}.type", "must be photo")
    if "version" in u and u["version"] not in ("2", "3"):
        c.fail(f"{path}.version", "must be 2 or 3 (1 is deprecated)")
    return "photo"


def _padding(c: _Checker, value: Any) -> tuple[float, float] | None:
    parts = value.split(" ") if isinstance(value, str) else []
    matches = [PERCENT.match(p) for p in parts]
    if not 1 <= len(parts) <= 2 or not all(matches):
        c.fail("operations.padding", "must be a percentage, or two (vertical horizontal) like '5% 25%'")
        return None
    values = [float(m.group(1)) for m in matches if m]
    return values[0], values[-1]


def _output(c: _Checker, value: Any) -> EditOutputSpec:
    spec = EditOutputSpec()
    if isinstance(value, str):
        value = {"destination": value}
    o = c.obj(value, "output", {"destination", "format", "metadata"})
    if o.get("destination") is not None:
        dest = c.string(o["destination"], "output.destination", 1, 4096)
        if dest is not None and not STORAGE_DEST.match(dest):
            c.fail("output.destination", "must be a storage://<storage-name>/<path> URI")
        spec.destination = dest
    fmt = o.get("format")
    if isinstance(fmt, str):
        spec.format = c.choice(fmt, "output.format", FORMATS) or "jpeg"
        spec.options = dict(FORMAT_DEFAULTS.get(spec.format, {}))
    elif isinstance(fmt, dict):
        spec.format = c.choice(fmt.get("type"), "output.format.type", FORMATS) or "jpeg"
        spec.options = dict(FORMAT_DEFAULTS.get(spec.format, {}))
        if spec.format == "tiff":
            f = c.obj(fmt, "output.format", {"compression"}, {"type"})
            if f.get("compression") is not None:
                spec.options["compression"] = c.choice(
                    f["compression"], "output.format.compression", ("lossless", "lossy")
                )
        else:
            format_options(c, fmt, spec.format, spec.options)
    elif fmt is not None:
        c.fail("output.format", "must be a string or an object")
    if o.get("metadata") is not None:
        m = c.obj(o["metadata"], "output.metadata", {"dpi", "color_space"})
        if m.get("dpi") is not None:
            dpi = c.number(m["dpi"], "output.metadata.dpi", 1, 10_000, integer=True)
            spec.dpi = int(dpi) if dpi else None
        if m.get("color_space") is not None:
            spec.color_space = _color_space(c, m["color_space"])
    return spec


def _color_space(c: _Checker, value: Any) -> str:
    path = "output.metadata.color_space"
    if isinstance(value, str):
        return c.choice(value, path, ("RGB", "CMYK")) or "RGB"
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "RGB":
        c.obj(value, path, set(), {"type"})
    elif kind == "CMYK":
        space = c.obj(value, path, {"color_profile"}, {"type"})
        if space.get("color_profile") is not None:
            c.string(space["color_profile"], f"{path}.color_profile", 1, 256)
    else:
        c.fail(f"{path}.type", "must be RGB or CMYK")
    return str(kind) if kind in ("RGB", "CMYK") else "RGB"


def destination_parts(destination: str) -> tuple[str, str]:
    match = STORAGE_DEST.match(destination)
    if match is None:
        raise ValueError(destination)
    return match.group(1), match.group(2)


__all__ = ["EditRequest", "Invalid", "Refused", "parse_edit"]
