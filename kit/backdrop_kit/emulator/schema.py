"""The emulator's own reading of the AI Background contract: every field checked, errors keyed by field path.

Written from shared/claid-ai-background.md, independently of the backdrop client's models, so that a mistake
in the client shows up as a 422 here rather than being mirrored.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

# Claid's OpenAPI (`SceneAspectRatioEnum` and friends), as shared/claid-ai-background.md transcribes it.
ASPECT_RATIOS = ("21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16")
MODELS = ("v1", "v2", "v2-beta")
FORMATS = ("jpeg", "png", "webp", "avif")
FORMAT_DEFAULTS: dict[str, dict[str, Any]] = {
    "jpeg": {"quality": 85, "progressive": True},
    "png": {"compression": "optimal"},
    "webp": {"lossless": False, "quality": 75},
    "avif": {"lossless": False, "quality": 50},
    "tiff": {"compression": "lossless"},  # image edit only
}
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
# http:// is let through for local inputs (presigned URLs of the local S3); Claid itself fetches https. A scheme is
# case-insensitive (RFC 3986): HTTPS:// is https://.
URL = re.compile(r"^(https?://[^\s]+|storage://[^/\s]+/[^\s]+)$", re.IGNORECASE)
STORAGE_DEST = re.compile(r"^storage://([^/\s]+)/(.*)$", re.IGNORECASE)
# One value for all sides or two (height, width), each pixels or per cent; the grammar is our reading.
PADDING = re.compile(r"^(\d+(?:\.\d+)?)(%|px)?(?: (\d+(?:\.\d+)?)(%|px)?)?$")

# The closed set of fields of each scene kind and object placement.
SCENE_KINDS = {
    "prompt": ({"prompt"}, {"model", "negative_prompt", "steps", "color", "aspect_ratio", "preference"}),
    "template": (
        {"template_url", "view"},
        {"model", "template_mode", "color", "prompt", "negative_prompt", "steps"},
    ),
    "shadow": ({"effect"}, {"model", "color", "view", "aspect_ratio"}),
}
PLACEMENTS = {
    "absolute": ({"image_url"}, {"placement_type", "scale", "rotation_degree", "position"}),
    "original": ({"image_url", "placement_type"}, set()),
    "padding": ({"image_url", "placement_type", "padding"}, set()),
}


@dataclass
class Scene:
    mode: str  # prompt | template | shadow
    model: str = "v1"
    prompt: str | None = None
    autoprompt: bool = False
    aspect_ratio: str = "1:1"  # templates take none; the emulator draws them square
    color: str | None = None
    view: str | None = None


@dataclass
class Placement:
    placement_type: str = "absolute"
    scale: float = 1.0
    rotation: float = 0.0
    x: float = 0.5
    y: float = 0.5  # Claid's OpenAPI: 0 is the bottom edge, 1 the top (see docs/decisions.md)
    padding: tuple[tuple[float, str], tuple[float, str]] | None = None  # (height, width) as (value, unit)


@dataclass
class OutputSpec:
    destination: str | None = None
    number_of_images: int = 4
    format: str = "png"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SceneRequest:
    image_url: str
    placement: Placement
    scene: Scene
    output: OutputSpec


class Invalid(Exception):
    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in details.items()))
        self.details = details


class _Checker:
    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def fail(self, path: str, message: str) -> None:
        self.details.setdefault(path, []).append(message)

    def obj(
        self, value: Any, path: str, allowed: AbstractSet[str], required: AbstractSet[str] = frozenset()
    ) -> dict[str, Any]:
        """A closed object: unknown keys and missing required keys are each an error at their path."""
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return {}
        for key in value:
            if key not in allowed and key not in required:
                self.fail(f"{path}.{key}" if path != "body" else key, "extra fields not permitted")
        for key in sorted(required - set(value)):
            self.fail(f"{path}.{key}" if path != "body" else key, "field required")
        return value

    def string(self, value: Any, path: str, lo: int, hi: int) -> str | None:
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return None
        if not lo <= len(value) <= hi:
            self.fail(path, f"length must be between {lo} and {hi}")
            return None
        return value

    def number(self, value: Any, path: str, lo: float, hi: float, integer: bool = False) -> float | None:
        # JSON Schema's integer is a number with no fraction: 25.0 is one, 25.5 is not.
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not whole):
            self.fail(path, "must be an integer" if integer else "must be a number")
            return None
        if not lo <= value <= hi:
            self.fail(path, f"must be between {lo:g} and {hi:g}")
            return None
        return float(value)

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str | None:
        if not isinstance(value, str) or value not in options:
            self.fail(path, f"must be one of {', '.join(options)}")
            return None
        return value

    def color(self, value: Any, path: str, extra: tuple[str, ...] = ()) -> str | None:
        if isinstance(value, str) and (HEX.match(value) or value in extra):
            return value
        self.fail(path, "must be a hex colour like #a1b2c3" + (f" or {', '.join(extra)}" if extra else ""))
        return None

    def url(self, value: Any, path: str) -> str | None:
        url = self.string(value, path, 1, 4096)
        if url is not None and not URL.match(url):
            self.fail(path, "must be an https:// URL or a storage://<name>/<path> URI")
            return None
        return url


def parse(body: Any) -> SceneRequest:
    """The request as Claid's OpenAPI validates it, with its defaults filled in; Invalid lists every problem."""
    c = _Checker()
    top = c.obj(body, "body", {"output"}, {"object", "scene"})
    placement, image_url = _object(c, top.get("object", {}))
    scene = _scene(c, top.get("scene", {}))
    if "output" in top and top["output"] is None:
        c.fail("output", "null is not allowed: leave the key out for the defaults")
    output = _output(c, top.get("output"))
    if c.details:
        raise Invalid(c.details)
    return SceneRequest(image_url, placement, scene, output)


def _object(c: _Checker, value: Any) -> tuple[Placement, str]:
    placement = Placement()
    kind = value.get("placement_type", "absolute") if isinstance(value, dict) else "absolute"
    if kind not in PLACEMENTS:
        c.choice(kind, "object.placement_type", tuple(PLACEMENTS))
        return placement, ""
    placement.placement_type = kind
    required, optional = PLACEMENTS[kind]
    o = c.obj(value, "object", optional, required)
    image_url = c.url(o["image_url"], "object.image_url") if "image_url" in o else None
    if "scale" in o:
        scale = o["scale"]
        if isinstance(scale, int) and not isinstance(scale, bool) and scale in (0, 1):
            placement.scale = float(scale)  # the OpenAPI's integer branch: 0 or 1
        else:
            placement.scale = c.number(scale, "object.scale", 0.01, 1.0) or 1.0
    if "rotation_degree" in o:
        placement.rotation = c.number(o["rotation_degree"], "object.rotation_degree", 0, 360) or 0.0
    if "position" in o:
        pos = c.obj(o["position"], "object.position", {"x", "y"})
        for axis in ("x", "y"):
            if axis in pos:
                found = c.number(pos[axis], f"object.position.{axis}", 0.0, 1.0)
                setattr(placement, axis, 0.5 if found is None else found)
    if "padding" in o:
        placement.padding = _padding(c, o["padding"])
    return placement, image_url or ""


def _padding(c: _Checker, value: Any) -> tuple[tuple[float, str], tuple[float, str]] | None:
    match = PADDING.match(value) if isinstance(value, str) else None
    if match is None:
        c.fail("object.padding", "must be one or two sizes like '10%' or '40px 10%'")
        return None
    height = (float(match.group(1)), match.group(2) or "px")
    width = (float(match.group(3)), match.group(4) or "px") if match.group(3) else height
    if any(unit == "%" and size > 50 for size, unit in (height, width)):
        c.fail("object.padding", "at most half the image's size (50%)")
        return None
    return height, width


def _prompt(c: _Checker, value: Any, path: str, scene: Scene) -> None:
    if not isinstance(value, dict):
        scene.prompt = c.string(value, path, 3, 2048)
        return
    if "text" in value:
        p = c.obj(value, path, set(), {"text"})
        scene.prompt = c.string(p["text"], f"{path}.text", 3, 2048)
        return
    p = c.obj(value, path, {"guidelines"}, {"generate"})
    if "generate" in p and p["generate"] is not True:
        c.fail(f"{path}.generate", "must be true")
    if "guidelines" in p:
        c.string(p["guidelines"], f"{path}.guidelines", 3, 1000)
    scene.autoprompt = True


def _scene(c: _Checker, value: Any) -> Scene:
    if not isinstance(value, dict):
        c.fail("scene", "must be an object")
        return Scene("prompt")
    # The three kinds are told apart by their required marker; each is closed, so nothing mixes.
    kind = "shadow" if "effect" in value else "template" if "template_url" in value else "prompt"
    required, optional = SCENE_KINDS[kind]
    s = c.obj(value, "scene", optional, required)
    scene = Scene(kind)
    if kind == "shadow":
        c.choice(s["effect"], "scene.effect", ("shadows",))
        scene.view = c.choice(s["view"], "scene.view", ("auto", "top", "front")) if "view" in s else "auto"
    if kind == "template":
        c.url(s["template_url"], "scene.template_url")
        if "view" in s:
            scene.view = c.choice(s["view"], "scene.view", ("top", "front"))
        if "template_mode" in s:
            c.choice(s["template_mode"], "scene.template_mode", ("transform", "adjust", "lock"))
    if "model" in s:
        scene.model = c.choice(s["model"], "scene.model", MODELS) or "v1"
    if "prompt" in s:
        _prompt(c, s["prompt"], "scene.prompt", scene)
    if "negative_prompt" in s:
        c.string(s["negative_prompt"], "scene.negative_prompt", 3, 2048)
    if "steps" in s:
        c.number(s["steps"], "scene.steps", 1, 49, integer=True)
    if "color" in s:
        scene.color = c.color(s["color"], "scene.color", ("transparent",) if kind == "shadow" else ())
    if "aspect_ratio" in s:
        scene.aspect_ratio = c.choice(s["aspect_ratio"], "scene.aspect_ratio", ASPECT_RATIOS) or "1:1"
    if "preference" in s:
        c.choice(s["preference"], "scene.preference", ("fast", "optimal", "best"))
    return scene


def _output(c: _Checker, value: Any) -> OutputSpec:
    spec = OutputSpec()
    if value is None:
        spec.options = dict(FORMAT_DEFAULTS[spec.format])
        return spec
    if isinstance(value, str):
        value = {"destination": value}
    o = c.obj(value, "output", {"destination", "number_of_images", "format"})
    if "destination" in o:
        dest = c.string(o["destination"], "output.destination", 1, 4096)
        if dest is not None and not STORAGE_DEST.match(dest):
            c.fail("output.destination", "must be a storage://<storage-name>/<path> URI")
        spec.destination = dest
    if "number_of_images" in o:
        n = c.number(o["number_of_images"], "output.number_of_images", 1, 4, integer=True)
        spec.number_of_images = int(n) if n else 4
    fmt = o.get("format", "png")
    if isinstance(fmt, str):
        spec.format = c.choice(fmt, "output.format", FORMATS) or "png"
        spec.options = dict(FORMAT_DEFAULTS[spec.format])
    elif isinstance(fmt, dict):
        spec.format = c.choice(fmt.get("type"), "output.format.type", FORMATS) or "png"
        spec.options = dict(FORMAT_DEFAULTS[spec.format])
        format_options(c, fmt, spec.format, spec.options)
    else:
        c.fail("output.format", "must be a string or an object")
    return spec


def format_options(c: _Checker, fmt: dict[str, Any], format_name: str, options: dict[str, Any]) -> None:
    """A format object's options (jpeg, png, webp, avif: the same for scene/create and image edit) into `options`."""
    path = "output.format"
    if format_name == "jpeg":
        f = c.obj(fmt, path, {"quality", "progressive"}, {"type"})
        if "quality" in f:
            options["quality"] = int(c.number(f["quality"], f"{path}.quality", 1, 100, True) or 85)
        if "progressive" in f:
            if not isinstance(f["progressive"], bool):
                c.fail(f"{path}.progressive", "must be a boolean")
            options["progressive"] = f["progressive"] is True
    elif format_name == "png":
        f = c.obj(fmt, path, {"compression"}, {"type"})
        if "compression" in f:
            chosen = c.choice(f["compression"], f"{path}.compression", ("fast", "optimal", "best"))
            options["compression"] = chosen or "optimal"
    else:
        f = c.obj(fmt, path, {"compression"}, {"type"})
        if "compression" not in f:
            return
        comp = f["compression"]
        if isinstance(comp, str):
            options["lossless"] = c.choice(comp, f"{path}.compression", ("lossy", "lossless")) == "lossless"
            return
        kind = comp.get("type") if isinstance(comp, dict) else None
        if kind == "lossless":
            c.obj(comp, f"{path}.compression", set(), {"type"})
            options["lossless"] = True
        elif kind == "lossy":
            lossy = c.obj(comp, f"{path}.compression", {"quality"}, {"type"})
            options["lossless"] = False
            if "quality" in lossy:
                q = c.number(lossy["quality"], f"{path}.compression.quality", 1, 100, integer=True)
                options["quality"] = int(q or options["quality"])
        else:
            c.fail(f"{path}.compression", "must be lossy, lossless, {type: lossy, quality} or {type: lossless}")


def unpaired_surrogates(value: Any, path: str = "") -> list[str]:
    """Where a JSON string holds a lone surrogate (`"\\ud800"` parses, but is no Unicode text): each path."""
    if isinstance(value, str):
        return [path or "body"] if any("\ud800" <= ch <= "\udfff" for ch in value) else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unpaired_surrogates(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unpaired_surrogates(v, f"{path}.{i}")]
    return []


def destination_parts(destination: str) -> tuple[str, str]:
    match = STORAGE_DEST.match(destination)
    if match is None:
        raise ValueError(destination)
    return match.group(1), match.group(2)
