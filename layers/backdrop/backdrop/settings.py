"""Generation settings: one validated model, resolved from defaults < profile < per-object S3 metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from backdrop.renditions import RenditionError, RenditionSpec, canonical, parse_renditions

# Claid's OpenAPI `SceneAspectRatioEnum`: the one list of ratios (the prose pages show an older set).
AspectRatio = Literal["21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16"]
ASPECT_RATIOS: tuple[str, ...] = get_args(AspectRatio)
ModelName = Literal["v1", "v2", "v2-beta"]
OutputFormat = Literal["jpeg", "png", "webp", "avif"]
Prompt = Annotated[str, Field(min_length=3, max_length=2048)]
Guidelines = Annotated[str, Field(min_length=3, max_length=1000)]
Percent = Annotated[int, Field(ge=1, le=100)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


def _half_at_most(padding: str) -> str:
    if any(part.endswith("%") and float(part[:-1]) > 50 for part in padding.split(" ")):
        raise ValueError("padding is at most half the image's size (50%)")
    return padding


# One value for all four sides or two (height, width), each in pixels or per cent of the image; the
# contract does not spell the grammar out, so this is ours (see docs/decisions.md).
Padding = Annotated[
    str,
    Field(pattern=r"^\d+(\.\d+)?(%|px)?( \d+(\.\d+)?(%|px)?)?$", max_length=64),
    AfterValidator(_half_at_most),
]

SceneKind = Literal["prompt", "template", "shadow"]
# What happens to the variants once recorded: nothing (none), all or the first published at the photo's stable
# key, or held for a person's choice (review). Not sent to Claid and not part of the job id.
PublishPolicy = Literal["none", "all", "first", "review"]
# What happens after the generation: publishing, and the storefront sizes of what is published (not sent to Claid's
# scene/create, not part of the job id).
NOT_FOR_CLAID = frozenset({"publish", "renditions"})
PlacementType = Literal["absolute", "original", "padding"]

# Which settings each kind of scene, placement and output format can carry: Claid refuses the whole
# request when a field of another kind is present, so a setting outside its kind is never sent.
SCENE_FIELDS: dict[str, frozenset[str]] = {
    "prompt": frozenset(
        {
            "prompt",
            "autoprompt",
            "guidelines",
            "model",
            "negative_prompt",
            "steps",
            "color",
            "aspect_ratio",
            "preference",
        }
    ),
    "template": frozenset(
        {
            "template_url",
            "view",
            "template_mode",
            "model",
            "color",
            "prompt",
            "autoprompt",
            "guidelines",
            "negative_prompt",
            "steps",
        }
    ),
    "shadow": frozenset({"effect", "model", "color", "view", "aspect_ratio"}),
}
PLACEMENT_FIELDS: dict[str, frozenset[str]] = {
    "absolute": frozenset({"scale", "rotation_degree", "position_x", "position_y"}),
    "original": frozenset(),
    "padding": frozenset({"padding"}),
}
FORMAT_FIELDS: dict[str, frozenset[str]] = {
    "jpeg": frozenset({"jpeg_quality", "jpeg_progressive"}),
    "png": frozenset({"png_compression"}),
    "webp": frozenset({"compression", "quality"}),
    "avif": frozenset({"compression", "quality"}),
}
SCENE_SETTINGS = frozenset().union(*SCENE_FIELDS.values())
PLACEMENT_SETTINGS = frozenset().union(*PLACEMENT_FIELDS.values())
FORMAT_SETTINGS = frozenset().union(*FORMAT_FIELDS.values())
# A field set to one of these decides a scene kind (a prompt also rides along with a template).
_KIND_MARKERS: dict[str, SceneKind] = {"effect": "shadow", "template_url": "template"}
_TRUE = ("true", "1", "yes", "on", "t", "y")

# S3 user metadata keys are read as `backdrop-<field name with '-' for '_'>`, e.g. x-amz-meta-backdrop-prompt.
METADATA_PREFIX = "backdrop-"


class SettingsError(ValueError):
    """Settings that cannot be sent to Claid; the message names each offending field and its source."""


class SettingNote(BaseModel):
    """A setting from a lower layer that the upload's own choices leave no place for: kept out, and said so."""

    # Part of the generation events: open to fields added within 1.x, as every event detail (events.EventDetail).
    model_config = ConfigDict(extra="ignore", frozen=True)

    field: str
    value: str
    source: str  # the layer it came from: defaults, profile <name>
    reason: str


def _truthy(value: Any) -> bool:
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
    if name == "autoprompt" and not _truthy(value):
        return None  # autoprompt=false asks for nothing
    if name in SCENE_SETTINGS and name not in SCENE_FIELDS[kind]:
        return f"a {kind} scene takes no {name} (Claid refuses the request)", "scene"
    if name == "view" and kind == "template" and value == "auto":
        return "a template scene takes view top or front, not auto", "scene"
    if name == "color" and value == "transparent" and kind != "shadow":
        return f"a {kind} scene takes a hex colour, not transparent (only the shadows effect does)", "scene"
    if name == "guidelines" and not _truthy(values.get("autoprompt")):
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

    model_config = ConfigDict(frozen=True, extra="forbid")

    # scene: exactly one kind, prompt (prompt or autoprompt) / template (template_url) / shadow (effect)
    prompt: Prompt | None = None
    autoprompt: bool = False
    guidelines: Guidelines | None = None
    negative_prompt: Prompt | None = None
    model: ModelName = "v1"
    aspect_ratio: AspectRatio | None = None
    color: HexColor | Literal["transparent"] | None = None
    steps: Annotated[int, Field(ge=1, le=49)] | None = None
    preference: Literal["fast", "optimal", "best"] | None = None
    template_url: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https://|storage://)")] | None = None
    template_mode: Literal["transform", "adjust", "lock"] | None = None
    view: Literal["auto", "top", "front"] | None = None
    effect: Literal["shadows"] | None = None
    # object placement; position_y follows Claid's OpenAPI: 0 is the bottom edge, 1 the top
    placement_type: PlacementType = "absolute"
    scale: Annotated[float, Field(ge=0.01, le=1.0)] | None = None
    rotation_degree: Annotated[float, Field(ge=0, le=360)] | None = None
    position_x: Unit | None = None
    position_y: Unit | None = None
    padding: Padding | None = None
    # output
    number_of_images: Annotated[int, Field(ge=1, le=4)] = 4
    output_format: OutputFormat = "jpeg"
    jpeg_quality: Percent | None = None
    jpeg_progressive: bool | None = None
    png_compression: Literal["fast", "optimal", "best"] | None = None
    compression: Literal["lossy", "lossless"] | None = None  # webp / avif
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
    def _coherent(self) -> Settings:
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

    @property
    def worst_case_images(self) -> int:
        return self.number_of_images


SETTING_NAMES = frozenset(Settings.model_fields)


def metadata_keys(metadata: Mapping[str, str]) -> dict[str, str]:
    """Which metadata key gives each of our names: {"number_of_images": "backdrop-number-of-images"}; other
    metadata keys are not ours. Raises SettingsError naming both keys when two spellings give one name: S3 keeps
    `backdrop-number-of-images` and `backdrop-number_of_images` apart, and which one wins would be a guess."""
    keys: dict[str, str] = {}
    for key in sorted(metadata):  # sorted: the same message whatever order S3 lists them in
        lowered = key.lower()
        if not lowered.startswith(METADATA_PREFIX):
            continue
        name = lowered.removeprefix(METADATA_PREFIX).replace("-", "_")
        if name in keys:
            raise SettingsError(
                f"x-amz-meta-{keys[name]} and x-amz-meta-{key} both set {name}: give it once, as "
                f"x-amz-meta-{METADATA_PREFIX}{name.replace('_', '-')}"
            )
        keys[name] = key
    return keys


def metadata_to_values(metadata: Mapping[str, str]) -> dict[str, str]:
    """`backdrop-number-of-images: 2` -> {"number_of_images": "2"}; other metadata keys are not ours.
    Raises SettingsError when two keys give one setting (see metadata_keys)."""
    # `profile` chooses the profile, it is not a setting.
    return {name: metadata[key].strip() for name, key in metadata_keys(metadata).items() if name != "profile"}


class Resolved(NamedTuple):
    settings: Settings
    notes: list[SettingNote]


def _scene_decided_at(layers: list[Mapping[str, Any]]) -> tuple[SceneKind, int]:
    """The layer whose choice makes the scene kind: the last to set an effect, a template_url or a prompt,
    except that a prompt (or autoprompt) over a template refines the template rather than replacing it."""
    kind: SceneKind = "prompt"
    layer = -1
    for index, values in enumerate(layers):
        marker = next((_KIND_MARKERS[name] for name in ("effect", "template_url") if _given(values.get(name))), None)
        if marker is not None:
            kind, layer = marker, index
        elif (_given(values.get("prompt")) or _truthy(values.get("autoprompt"))) and kind != "template":
            kind, layer = "prompt", index
    return kind, layer


def _given(value: Any) -> bool:
    return value is not None and value != ""


def resolve(
    defaults: Mapping[str, Any],
    profile: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    *,
    profile_name: str | None = None,
) -> Resolved:
    """Merge the three sources, later wins, and validate the result. Raises SettingsError naming the field.

    A setting the upload's scene kind (or placement, or output format) cannot carry is refused when it was
    given at the layer that made that choice or a later one; when it only came from an earlier layer (a
    stack-wide default aspect ratio under a template profile) it is left out, and a note says so."""
    layers: list[tuple[str, Mapping[str, Any]]] = [("defaults", defaults)]
    if profile is not None:
        layers.append((f"profile {profile_name}" if profile_name else "profile", profile))
    layers.append(("object metadata", metadata))
    merged: dict[str, Any] = {}
    layer_of: dict[str, int] = {}
    sources: dict[str, str] = {}  # which source each merged value came from, for messages
    given: list[Mapping[str, Any]] = []
    for index, (source, values) in enumerate(layers):
        unknown = sorted(set(values) - SETTING_NAMES)
        if unknown:
            raise SettingsError(
                f"{', '.join(unknown)} ({source}): unknown setting; known settings are "
                + ", ".join(sorted(SETTING_NAMES))
            )
        given.append({name: value for name, value in values.items() if _given(value)})
        for name, value in given[-1].items():
            merged[name] = value
            layer_of[name] = index
            sources[name] = source

    # The layer at which each deciding choice was made; -1 when nobody made it (the default applies).
    kind, kind_layer = _scene_decided_at(given)
    deciders = {
        "scene": kind_layer,
        "placement": layer_of.get("placement_type", -1),
        "format": layer_of.get("output_format", -1),
        "compression": layer_of.get("compression", -1),
    }
    # A prompt and an autoprompt from different layers: the later one is the choice.
    if "prompt" in merged and _truthy(merged.get("autoprompt")):
        earlier, later = sorted(("prompt", "autoprompt"), key=lambda name: layer_of[name])
        deciders["prompt"] = layer_of[later]
        if layer_of[earlier] < layer_of[later]:
            merged.pop(earlier)
    else:
        deciders["prompt"] = max(layer_of.get("prompt", -1), layer_of.get("autoprompt", -1))

    notes: list[SettingNote] = []
    problems: list[str] = []
    replaced = {name for name in ("prompt", "autoprompt") if name in layer_of and name not in merged}
    for name in replaced:
        notes.append(
            SettingNote(
                field=name,
                value=str(layers[layer_of[name]][1][name]),
                source=sources[name],
                reason=f"replaced by the {'autoprompt' if name == 'prompt' else 'prompt'} from "
                f"{sources['autoprompt' if name == 'prompt' else 'prompt']}",
            )
        )
    for name in list(merged):
        found = not_carried(name, merged, kind)
        if found is None:
            continue
        reason, decided_by = found
        if layer_of[name] >= deciders[decided_by]:
            problems.append(f"{name} ({sources[name]}): {reason}")
        else:
            notes.append(SettingNote(field=name, value=str(merged.pop(name)), source=sources[name], reason=reason))
    if problems:
        raise SettingsError("; ".join(problems))
    try:
        return Resolved(Settings.model_validate(merged), notes)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["loc"]:
                field = str(err["loc"][0])
                parts.append(f"{field} ({sources.get(field, 'defaults')}): {message}")
            else:
                parts.append(_with_sources(message, sources))
        raise SettingsError("; ".join(parts)) from None


def _with_sources(message: str, sources: Mapping[str, str]) -> str:
    """Settings' own checks say `field: why`; add where each field came from."""
    parts = []
    for part in message.split("; "):
        field, sep, rest = part.partition(": ")
        parts.append(f"{field} ({sources[field]}): {rest}" if sep and field in sources else part)
    return "; ".join(parts)


def resolve_settings(
    defaults: Mapping[str, Any],
    profile: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    *,
    profile_name: str | None = None,
) -> Settings:
    """`resolve` without the notes."""
    return resolve(defaults, profile, metadata, profile_name=profile_name).settings
