"""Generation settings: what a merchant can choose about one generation, as one validated model. The values and
bounds each setting takes are the Claid contract's (backdrop.claid.models); which settings each kind of scene,
placement and output format carries is read off the contract's models. The layers a setting comes from
(defaults < profile < object metadata) are resolved in backdrop.setting_layers."""

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from backdrop.claid.models import (
    IMAGES,
    PERCENT,
    ROTATION,
    SCALE,
    STEPS,
    UNIT,
    AbsoluteObject,
    AspectRatio,
    AvifFormat,
    CompressionName,
    Effect,
    FormatName,
    Guidelines,
    HexColor,
    JpegFormat,
    ModelName,
    OriginalObject,
    Padding,
    PaddingObject,
    PngCompression,
    PngFormat,
    Preference,
    Prompt,
    PromptScene,
    ShadowScene,
    TemplateMode,
    TemplateScene,
    View,
    WebpFormat,
)
from backdrop.renditions import RenditionError, RenditionSpec, canonical, parse_renditions

ASPECT_RATIOS: tuple[str, ...] = get_args(AspectRatio)
Percent = Annotated[int, PERCENT]
Unit = Annotated[float, UNIT]

SceneKind = Literal["prompt", "template", "shadow"]
# What happens to the variants once recorded: nothing (none), all or the first published at the photo's stable
# key, or held for a person's choice (review). Not sent to Claid and not part of the job id.
PublishPolicy = Literal["none", "all", "first", "review"]
# What happens after the generation: publishing, and the storefront sizes of what is published (not sent to Claid's
# scene/create, not part of the job id).
NOT_FOR_CLAID = frozenset({"publish", "renditions"})
PlacementType = Literal["absolute", "original", "padding"]


def _filled_by(model: type[BaseModel], **renamed: tuple[str, ...]) -> frozenset[str]:
    """The settings that fill `model`'s fields: each field's own name, unless `renamed` names the settings that
    fill it (none, for a field the builder sets itself)."""
    return frozenset(name for field in model.model_fields for name in renamed.get(field, (field,)))


# Which settings each kind of scene, placement and output format can carry: Claid refuses the whole
# request when a field of another kind is present, so a setting outside its kind is never sent.
_PROMPT = ("prompt", "autoprompt", "guidelines")  # a written prompt, or a generated one with its guidelines
SCENE_FIELDS: dict[str, frozenset[str]] = {
    "prompt": _filled_by(PromptScene, prompt=_PROMPT),
    "template": _filled_by(TemplateScene, prompt=_PROMPT),
    "shadow": _filled_by(ShadowScene),
}
_OBJECT = {"image_url": (), "placement_type": (), "position": ("position_x", "position_y")}
PLACEMENT_FIELDS: dict[str, frozenset[str]] = {
    "absolute": _filled_by(AbsoluteObject, **_OBJECT),
    "original": _filled_by(OriginalObject, **_OBJECT),
    "padding": _filled_by(PaddingObject, **_OBJECT),
}
_WEB_COMPRESSION = ("compression", "quality")  # the quality is a lossy compression's
FORMAT_FIELDS: dict[str, frozenset[str]] = {
    "jpeg": _filled_by(JpegFormat, type=(), quality=("jpeg_quality",), progressive=("jpeg_progressive",)),
    "png": _filled_by(PngFormat, type=(), compression=("png_compression",)),
    "webp": _filled_by(WebpFormat, type=(), compression=_WEB_COMPRESSION),
    "avif": _filled_by(AvifFormat, type=(), compression=_WEB_COMPRESSION),
}
SCENE_SETTINGS = frozenset().union(*SCENE_FIELDS.values())
PLACEMENT_SETTINGS = frozenset().union(*PLACEMENT_FIELDS.values())
FORMAT_SETTINGS = frozenset().union(*FORMAT_FIELDS.values())
_TRUE = ("true", "1", "yes", "on", "t", "y")


class SettingsError(ValueError):
    """Settings that cannot be sent to Claid; the message names each offending field and its source."""


class SettingNote(BaseModel):
    """A setting from a lower layer that the upload's own choices leave no place for: kept out, and said so."""

    # Part of the generation events: open to fields added within 1.x, as every event detail (events.EventDetail).
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    field: str
    value: str
    source: str  # the layer it came from: defaults, profile <name>
    reason: str


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUE) or value == 1


def scene_kind(values: Mapping[str, Any]) -> SceneKind:
    """The scene kind these values make: shadow with an effect, template with a template_url, else prompt."""
    if values.get("effect") not in (None, ""):
        return "shadow"
    if values.get("template_url") not in (None, ""):
        return "template"
    return "prompt"


def not_carried(name: str, values: Mapping[str, Any], kind: SceneKind | None = None) -> tuple[str, str] | None:
    """Why `name` cannot go to Claid beside the other `values` in a scene of `kind` (by default the kind the
    values make), and which choice decides that ("scene", "prompt", "placement", "format" or
    "compression"); None when it can go."""
    value = values.get(name)
    kind = kind or scene_kind(values)
    if name == "autoprompt" and not truthy(value):
        return None  # autoprompt=false asks for nothing
    if name in SCENE_SETTINGS and name not in SCENE_FIELDS[kind]:
        return f"a {kind} scene takes no {name} (Claid refuses the request)", "scene"
    if name == "view" and kind == "template" and value == "auto":
        return "a template scene takes view top or front, not auto", "scene"
    if name == "color" and value == "transparent" and kind != "shadow":
        return f"a {kind} scene takes a hex colour, not transparent (only the shadows effect does)", "scene"
    if name == "guidelines" and not truthy(values.get("autoprompt")):
        return "guidelines go only with autoprompt=true", "prompt"
    placement = values.get("placement_type") or "absolute"
    if name in PLACEMENT_SETTINGS and placement in PLACEMENT_FIELDS and name not in PLACEMENT_FIELDS[placement]:
        return f"placement_type {placement} takes no {name}", "placement"
    fmt = values.get("output_format") or "jpeg"
    if name in FORMAT_SETTINGS and fmt in FORMAT_FIELDS and name not in FORMAT_FIELDS[fmt]:
        return f"output_format {fmt} takes no {name}", "format"
    if name == "quality" and values.get("compression") == "lossless":
        return "a lossless compression takes no quality", "compression"
    return None


class Settings(BaseModel):
    """Everything a merchant can choose about one generation; each field maps to the Claid contract.

    Unset fields are None and are not sent: Claid's own defaults apply (model v1, aspect ratio 1:1 for
    prompt and shadow scenes, template_mode transform, shadow view auto)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # scene: exactly one kind, prompt (prompt or autoprompt) / template (template_url) / shadow (effect)
    prompt: Prompt | None = None
    autoprompt: bool = False
    guidelines: Guidelines | None = None
    negative_prompt: Prompt | None = None
    model: ModelName = "v1"
    aspect_ratio: AspectRatio | None = None
    color: HexColor | Literal["transparent"] | None = None
    steps: Annotated[int, STEPS] | None = None
    preference: Preference | None = None
    # narrower than the contract's Url: we ask Claid to fetch a template over https or from storage only
    template_url: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https://|storage://)")] | None = None
    template_mode: TemplateMode | None = None
    view: View | None = None
    effect: Effect | None = None
    # object placement; position_y follows Claid's OpenAPI: 0 is the bottom edge, 1 the top
    placement_type: PlacementType = "absolute"
    scale: Annotated[float, SCALE] | None = None
    rotation_degree: Annotated[float, ROTATION] | None = None
    position_x: Unit | None = None
    position_y: Unit | None = None
    padding: Padding | None = None
    # output
    number_of_images: Annotated[int, IMAGES] = 4
    output_format: FormatName = "jpeg"
    jpeg_quality: Percent | None = None
    jpeg_progressive: bool | None = None
    png_compression: PngCompression | None = None
    compression: CompressionName | None = None  # webp / avif
    quality: Percent | None = None  # webp / avif lossy quality
    # after the generation (see backdrop.publishing)
    publish: PublishPolicy = "none"
    # the sizes each published image is also made at (backdrop.renditions); None: none
    renditions: tuple[RenditionSpec, ...] | None = None

    @field_validator("renditions", mode="before")
    @classmethod
    def _rendition_list(cls, value: object, info: ValidationInfo) -> object:
        """A list as a merchant writes it (`2048 webp, shopify`); an entry without a format takes the variants'."""
        if not isinstance(value, str):
            return value
        try:
            specs = parse_renditions(value, str(info.data.get("output_format") or "jpeg"))
        except RenditionError as exc:
            raise ValueError(str(exc)) from None
        return specs or None

    @field_serializer("renditions")
    def _rendition_text(self, specs: tuple[RenditionSpec, ...] | None) -> str | None:
        return canonical(specs) if specs else None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        problems: list[str] = []
        values = self.model_dump(exclude_none=True)
        kind = self.kind
        if kind == "prompt" and self.prompt is None and not self.autoprompt:
            problems.append("prompt: a prompt, autoprompt=true, a template_url or effect=shadows is required")
        if self.autoprompt and self.prompt is not None:
            problems.append("autoprompt: choose either a prompt or autoprompt, not both")
        if self.effect is not None and self.template_url is not None:
            problems.append("effect: choose either the shadows effect or a template_url, not both")
        for name in values:
            if name == "template_url" and kind == "shadow":
                continue  # said once, above
            found = not_carried(name, values)
            if found is not None:
                problems.append(f"{name}: {found[0]}")
        if kind == "template" and self.view is None:
            problems.append("view: a template scene requires view (top or front)")
        if self.placement_type == "padding" and self.padding is None:
            problems.append("padding: placement_type padding requires padding")
        if self.color == "transparent" and self.output_format != "png":
            problems.append(f"color: transparent needs output_format=png, not {self.output_format}")
        if (self.position_x is None) != (self.position_y is None):
            problems.append("position_x: give position_x and position_y together")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def kind(self) -> SceneKind:
        return scene_kind(self.model_dump(include={"effect", "template_url"}))

    def fingerprint(self) -> str:
        """A stable digest of what Claid will be asked for: part of the job id."""
        canonical = json.dumps(
            self.model_dump(mode="json", exclude_none=True, exclude=set(NOT_FOR_CLAID)), sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


SETTING_NAMES = frozenset(Settings.model_fields)
