"""The emulator's own reading of the AI Background contract: every field checked, errors keyed by field path.

Written from shared/claid-ai-background.md, independently of the backdrop client's models, so that a mistake
in the client shows up as a 422 here rather than being mirrored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ASPECT_RATIOS = ("4:7", "7:9", "4:5", "1:1", "9:7", "19:13", "7:4", "16:9", "12:5")
FORMATS = ("jpeg", "png", "webp", "avif")
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
URL = re.compile(r"^(https?://[^\s]+|storage://[^/\s]+/[^\s]+)$")
STORAGE_DEST = re.compile(r"^storage://([^/\s]+)/(.*)$")


@dataclass
class Scene:
    mode: str  # text | template | shadows
    model: str = "v1"
    prompt: str | None = None
    autoprompt: bool = False
    aspect_ratio: str = "1:1"
    color: str | None = None


@dataclass
class Placement:
    placement_type: str = "absolute"
    scale: float = 1.0
    rotation: float = 0.0
    x: float = 0.5
    y: float = 0.5


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

    def obj(self, value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown field")
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
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            self.fail(path, "must be an integer" if integer else "must be a number")
            return None
        if not lo <= value <= hi:
            self.fail(path, f"must be between {lo:g} and {hi:g}")
            return None
        return float(value)

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str | None:
        if value not in options:
            self.fail(path, f"must be one of {', '.join(options)}")
            return None
        return str(value)

    def color(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not HEX.match(value):
            self.fail(path, "must be a hex colour like #a1b2c3")
            return None
        return value


def parse(body: Any) -> SceneRequest:
    c = _Checker()
    top = c.obj(body, "body", {"object", "scene", "output"})
    if "object" not in top:
        c.fail("object", "field required")
    if "scene" not in top:
        c.fail("scene", "field required")
    placement = Placement()
    image_url = ""
    o = c.obj(top.get("object", {}), "object", {"image_url", "placement_type", "scale", "rotation_degree", "position"})
    if "image_url" not in o:
        c.fail("object.image_url", "field required")
    else:
        url = c.string(o["image_url"], "object.image_url", 1, 4096)
        if url is not None and not URL.match(url):
            c.fail("object.image_url", "must be an https:// URL or a storage://<name>/<path> URI")
        image_url = url or ""
    if "placement_type" in o:
        placement.placement_type = (
            c.choice(o["placement_type"], "object.placement_type", ("absolute", "original")) or ""
        )
    if "scale" in o:
        placement.scale = c.number(o["scale"], "object.scale", 0.1, 1.0) or 1.0
    if "rotation_degree" in o:
        placement.rotation = c.number(o["rotation_degree"], "object.rotation_degree", 0, 360) or 0.0
    if "position" in o:
        pos = c.obj(o["position"], "object.position", {"x", "y"})
        for axis in ("x", "y"):
            if axis in pos:
                setattr(placement, axis, c.number(pos[axis], f"object.position.{axis}", 0.0, 1.0) or 0.0)

    scene = _scene(c, top.get("scene", {}))
    output = _output(c, top.get("output"))
    if c.details:
        raise Invalid(c.details)
    return SceneRequest(image_url, placement, scene, output)


def _prompt(c: _Checker, value: Any, path: str, scene: Scene) -> None:
    if isinstance(value, dict):
        p = c.obj(value, path, {"generate", "guidelines"})
        if p.get("generate") is not True:
            c.fail(f"{path}.generate", "must be true")
        if "guidelines" in p:
            c.string(p["guidelines"], f"{path}.guidelines", 1, 2048)
        scene.autoprompt = True
    else:
        scene.prompt = c.string(value, path, 3, 2048)


def _scene(c: _Checker, value: Any) -> Scene:
    if not isinstance(value, dict):
        c.fail("scene", "must be an object")
        return Scene("text")
    if "effect" in value:
        s = c.obj(value, "scene", {"effect", "color", "view"})
        c.choice(s["effect"], "scene.effect", ("shadows",))
        scene = Scene("shadows")
        if "color" in s:
            scene.color = c.color(s["color"], "scene.color")
        if "view" in s:
            c.choice(s["view"], "scene.view", ("top", "front"))
        return scene
    if "template_url" in value:
        s = c.obj(value, "scene", {"template_url", "template_mode", "view", "prompt", "color", "steps"})
        scene = Scene("template")
        url = c.string(s["template_url"], "scene.template_url", 1, 4096)
        if url is not None and not URL.match(url):
            c.fail("scene.template_url", "must be an https:// URL or a storage:// URI")
        if "template_mode" in s:
            c.choice(s["template_mode"], "scene.template_mode", ("transform", "adjust", "lock"))
        if "view" in s:
            c.choice(s["view"], "scene.view", ("top", "front"))
        if "prompt" in s:
            scene.prompt = c.string(s["prompt"], "scene.prompt", 3, 2048)
        if "color" in s:
            scene.color = c.color(s["color"], "scene.color")
        if "steps" in s:
            c.number(s["steps"], "scene.steps", 1, 49, integer=True)
        return scene
    s = c.obj(value, "scene", {"model", "prompt", "negative_prompt", "aspect_ratio", "color", "steps", "preference"})
    scene = Scene("text")
    scene.model = c.choice(s.get("model", "v1"), "scene.model", ("v1", "v2")) or "v1"
    if "prompt" not in s:
        c.fail("scene.prompt", "field required")
    else:
        _prompt(c, s["prompt"], "scene.prompt", scene)
    if "negative_prompt" in s:
        c.string(s["negative_prompt"], "scene.negative_prompt", 3, 2048)
    if "aspect_ratio" in s:
        scene.aspect_ratio = c.choice(s["aspect_ratio"], "scene.aspect_ratio", ASPECT_RATIOS) or "1:1"
    if "color" in s:
        if scene.model != "v1":
            c.fail("scene.color", "only model v1 takes a color")
        scene.color = c.color(s["color"], "scene.color")
    if "steps" in s:
        if scene.model != "v1":
            c.fail("scene.steps", "only model v1 takes steps")
        c.number(s["steps"], "scene.steps", 1, 49, integer=True)
    if "preference" in s:
        if scene.model != "v2":
            c.fail("scene.preference", "only model v2 takes a preference")
        c.choice(s["preference"], "scene.preference", ("fast", "optimal", "best"))
    return scene


def _output(c: _Checker, value: Any) -> OutputSpec:
    spec = OutputSpec()
    if value is None:
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
    if "format" in o:
        fmt = o["format"]
        if isinstance(fmt, str):
            spec.format = c.choice(fmt, "output.format", FORMATS) or "png"
        elif isinstance(fmt, dict):
            kind = c.choice(fmt.get("type"), "output.format.type", FORMATS) or "png"
            spec.format = kind
            if kind == "jpeg":
                f = c.obj(fmt, "output.format", {"type", "quality", "progressive"})
                if "quality" in f:
                    spec.options["quality"] = int(c.number(f["quality"], "output.format.quality", 1, 100, True) or 85)
                if "progressive" in f:
                    if not isinstance(f["progressive"], bool):
                        c.fail("output.format.progressive", "must be a boolean")
                    spec.options["progressive"] = bool(f["progressive"])
            elif kind == "png":
                f = c.obj(fmt, "output.format", {"type", "compression"})
                if "compression" in f:
                    spec.options["compression"] = c.choice(
                        f["compression"], "output.format.compression", ("fast", "optimal", "best")
                    )
            else:
                f = c.obj(fmt, "output.format", {"type", "compression"})
                if "compression" in f:
                    comp = c.obj(f["compression"], "output.format.compression", {"type", "quality"})
                    spec.options["lossless"] = (
                        c.choice(comp.get("type"), "output.format.compression.type", ("lossy", "lossless"))
                        == "lossless"
                    )
                    if "quality" in comp:
                        q = c.number(comp["quality"], "output.format.compression.quality", 1, 100, integer=True)
                        spec.options["quality"] = int(q or 90)
        else:
            c.fail("output.format", "must be a string or an object")
    return spec


def destination_parts(destination: str) -> tuple[str, str]:
    match = STORAGE_DEST.match(destination)
    if match is None:
        raise ValueError(destination)
    return match.group(1), match.group(2)
