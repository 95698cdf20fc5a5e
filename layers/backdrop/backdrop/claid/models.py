"""Typed models of Claid's AI Background API (scene/create), as shared/claid-ai-background.md describes it, and the
error body both APIs answer with: with backdrop.claid.edit_models (Image Editing), the one statement of the contract
in the library. The settings a merchant gives (backdrop.settings) take their allowed values and bounds from the
names here."""

import json
from typing import Annotated, Any, Literal, Self, TypeAlias

from annotated_types import Interval
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# --- The contract's values and bounds, named once ----------------------------------------------------------------
# Claid's OpenAPI `SceneAspectRatioEnum`: the one list of ratios (the prose pages show an older set).
AspectRatio = Literal["21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16"]
ModelName = Literal["v1", "v2", "v2-beta"]
FormatName = Literal["jpeg", "png", "webp", "avif"]
Preference = Literal["fast", "optimal", "best"]
TemplateMode = Literal["transform", "adjust", "lock"]
View = Literal["auto", "top", "front"]  # a template scene takes top or front only
Effect = Literal["shadows"]
PngCompression = Literal["fast", "optimal", "best"]
CompressionName = Literal["lossy", "lossless"]
Prompt = Annotated[str, Field(min_length=3, max_length=2048)]
Guidelines = Annotated[str, Field(min_length=3, max_length=1000)]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
# Numeric bounds, to be put on an int or a float as the reader needs (the requests read JSON Schema's integer).
STEPS = Interval(ge=1, le=49)
PERCENT = Interval(ge=1, le=100)
UNIT = Interval(ge=0.0, le=1.0)  # a position: 0 is the left (x) or bottom (y) edge
SCALE = Interval(ge=0.01, le=1.0)
ROTATION = Interval(ge=0, le=360)
IMAGES = Interval(ge=1, le=4)  # number_of_images


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


def _whole(value: Any) -> Any:
    """JSON Schema's integer: 25.0 is the integer 25 (and stays refused where a float is not whole)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema reads one: a whole-number float passes, a bool or a string does not.
Integer = Annotated[int, BeforeValidator(_whole), Field(strict=True)]
# URI schemes are case-insensitive (RFC 3986): HTTPS:// is https://.
Url = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(?i:https?://|storage://)")]
Steps = Annotated[Integer, STEPS]
Percent = Annotated[Integer, PERCENT]
# 0.01-1; the OpenAPI also lets an integer 0 or 1 through
Scale = Annotated[int, Field(ge=0, le=1, strict=True)] | Annotated[float, SCALE]


class _Model(BaseModel):
    """Every object of the request is closed: Claid refuses unknown keys (additionalProperties: false), and no
    field takes null (leave the key out). The builder never sends a None: it leaves the key out."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(str(key) for key, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"{', '.join(nulls)}: null is not a value here; leave the key out")
        return data


class Position(_Model):
    """Claid's OpenAPI: x 0 is the left edge, y 0 the bottom edge (see docs/decisions.md)."""

    x: Annotated[float, UNIT] | None = None
    y: Annotated[float, UNIT] | None = None


class AbsoluteObject(_Model):
    image_url: Url
    placement_type: Literal["absolute"] | None = None  # the default placement
    scale: Scale | None = None
    rotation_degree: Annotated[float, ROTATION] | None = None
    position: Position | None = None


class OriginalObject(_Model):
    image_url: Url
    placement_type: Literal["original"]


class PaddingObject(_Model):
    image_url: Url
    placement_type: Literal["padding"]
    padding: Padding


SceneObject = AbsoluteObject | OriginalObject | PaddingObject


class TextPrompt(_Model):
    text: Prompt


class GeneratedPrompt(_Model):
    generate: Literal[True]
    guidelines: Guidelines | None = None


PromptSpec: TypeAlias = Prompt | TextPrompt | GeneratedPrompt


class PromptScene(_Model):
    """`SceneCreateAPIScenePromptIn`: a written or generated prompt; no view, no template fields."""

    prompt: PromptSpec
    model: ModelName | None = None
    negative_prompt: Prompt | None = None
    steps: Steps | None = None
    color: HexColor | None = None
    aspect_ratio: AspectRatio | None = None
    preference: Preference | None = None


class TemplateScene(_Model):
    """`SceneCreateAPISceneTemplateIn`: view is required; no aspect_ratio, no preference."""

    template_url: Url
    view: Literal["top", "front"]  # of View, without auto
    model: ModelName | None = None
    template_mode: TemplateMode | None = None
    color: HexColor | None = None
    prompt: PromptSpec | None = None
    negative_prompt: Prompt | None = None
    steps: Steps | None = None


class ShadowScene(_Model):
    """`SceneCreateAPISceneBackgroundEffectIn`: the shadows effect and nothing but model/color/view/ratio."""

    effect: Effect = "shadows"
    model: ModelName | None = None
    color: HexColor | Literal["transparent"] | None = None
    view: View | None = None
    aspect_ratio: AspectRatio | None = None


Scene = PromptScene | TemplateScene | ShadowScene


class JpegFormat(_Model):
    type: Literal["jpeg"]
    quality: Percent | None = None  # Claid's default 85
    progressive: bool | None = None  # Claid's default true


class PngFormat(_Model):
    type: Literal["png"]
    compression: PngCompression | None = None  # Claid's default optimal


class Lossy(_Model):
    type: Literal["lossy"]
    quality: Percent | None = None  # Claid's default 75 for WEBP, 50 for AVIF


class Lossless(_Model):
    type: Literal["lossless"]


Compression = CompressionName | Lossy | Lossless


class WebpFormat(_Model):
    type: Literal["webp"]
    compression: Compression | None = None


class AvifFormat(_Model):
    type: Literal["avif"]
    compression: Compression | None = None


OutputFormatSpec = FormatName | JpegFormat | PngFormat | WebpFormat | AvifFormat


StorageUri = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(?i:storage)://[^/]+/")]


class Output(_Model):
    destination: StorageUri | None = None
    number_of_images: Annotated[Integer, IMAGES] | None = None
    format: OutputFormatSpec | None = None


class SceneRequest(_Model):
    object: SceneObject
    scene: Scene
    output: Output | StorageUri | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class ImageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    ext: str | None = None
    mps: float | None = None
    mime: str | None = None
    format: str | None = None
    width: int
    height: int


class OutputImage(ImageInfo):
    tmp_url: str | None = None
    object_key: str | None = None
    object_bucket: str | None = None
    object_uri: str | None = None
    claid_storage_uri: str | None = None


class SceneData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    input: ImageInfo | None = None
    output: list[OutputImage]


class SceneResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    data: SceneData


class ErrorBody(BaseModel):
    """Claid's one error shape. Read leniently: whatever comes, the code, type, message and details are kept."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    error_code: str | None = None
    error_type: str | None = None  # an open set: auth, validation, general, billing, ... and new ones
    error_message: str | None = None
    error_details: dict[str, Any] = Field(default_factory=dict)  # any JSON under each key

    @classmethod
    def read(cls, payload: Any) -> Self:
        """The flat body, or the same wrapped in `{"detail": {...}}` (the documented 429). Anything else is
        kept whole in error_details, so nothing Claid said is lost."""
        if isinstance(payload, dict) and "error_code" not in payload and isinstance(payload.get("detail"), dict):
            payload = payload["detail"]
        if not isinstance(payload, dict):
            return cls(error_details={} if payload is None else {"body": payload})

        def text(name: str) -> str | None:
            value = payload.get(name)
            if value is None or isinstance(value, str):
                return value
            return json.dumps(value) if isinstance(value, dict | list) else str(value)

        details = payload.get("error_details")
        if details is None:
            details = {key: value for key, value in payload.items() if not key.startswith("error_")}
        elif not isinstance(details, dict):
            details = {"error_details": details}  # Claid documents an object; keep any other shape whole
        return cls(
            error_code=text("error_code"),
            error_type=text("error_type"),
            error_message=text("error_message"),
            error_details=details,
        )
