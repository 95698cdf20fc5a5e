"""Typed models of the AI Background request and response, as the contract in shared/ describes them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from backdrop.settings import AspectRatio, Guidelines, HexColor, ModelName, Padding, Percent, Prompt

Url = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https?://|storage://)")]
Steps = Annotated[int, Field(ge=1, le=49)]
# 0.01-1; the OpenAPI also lets an integer 0 or 1 through
Scale = Annotated[int, Field(ge=0, le=1, strict=True)] | Annotated[float, Field(ge=0.01, le=1.0)]


class _Model(BaseModel):
    """Every object of the request is closed: Claid refuses unknown keys (additionalProperties: false)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Model):
    """Claid's OpenAPI: x 0 is the left edge, y 0 the bottom edge (see docs/decisions.md)."""

    x: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    y: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class AbsoluteObject(_Model):
    image_url: Url
    placement_type: Literal["absolute"] | None = None  # the default placement
    scale: Scale | None = None
    rotation_degree: Annotated[float, Field(ge=0, le=360)] | None = None
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
    preference: Literal["fast", "optimal", "best"] | None = None


class TemplateScene(_Model):
    """`SceneCreateAPISceneTemplateIn`: view is required; no aspect_ratio, no preference."""

    template_url: Url
    view: Literal["top", "front"]
    model: ModelName | None = None
    template_mode: Literal["transform", "adjust", "lock"] | None = None
    color: HexColor | None = None
    prompt: PromptSpec | None = None
    negative_prompt: Prompt | None = None
    steps: Steps | None = None


class ShadowScene(_Model):
    """`SceneCreateAPISceneBackgroundEffectIn`: the shadows effect and nothing but model/color/view/ratio."""

    effect: Literal["shadows"] = "shadows"
    model: ModelName | None = None
    color: HexColor | Literal["transparent"] | None = None
    view: Literal["auto", "top", "front"] | None = None
    aspect_ratio: AspectRatio | None = None


Scene = PromptScene | TemplateScene | ShadowScene


class JpegFormat(_Model):
    type: Literal["jpeg"]
    quality: Percent | None = None  # Claid's default 85
    progressive: bool | None = None  # Claid's default true


class PngFormat(_Model):
    type: Literal["png"]
    compression: Literal["fast", "optimal", "best"] | None = None  # Claid's default optimal


class Lossy(_Model):
    type: Literal["lossy"]
    quality: Percent | None = None  # Claid's default 75 for WEBP, 50 for AVIF


class Lossless(_Model):
    type: Literal["lossless"]


Compression = Literal["lossy", "lossless"] | Lossy | Lossless


class WebpFormat(_Model):
    type: Literal["webp"]
    compression: Compression | None = None


class AvifFormat(_Model):
    type: Literal["avif"]
    compression: Compression | None = None


FormatName = Literal["jpeg", "png", "webp", "avif"]
OutputFormatSpec = FormatName | JpegFormat | PngFormat | WebpFormat | AvifFormat


class Output(_Model):
    destination: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^storage://[^/]+/")] | None = None
    number_of_images: Annotated[int, Field(ge=1, le=4, strict=True)] | None = None
    format: OutputFormatSpec | None = None


class SceneRequest(_Model):
    object: SceneObject
    scene: Scene
    output: Output | Annotated[str, Field(pattern=r"^storage://[^/]+/")] | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def images_requested(self) -> int:
        if isinstance(self.output, Output) and self.output.number_of_images is not None:
            return self.output.number_of_images
        return 4  # Claid's default when number_of_images is omitted

    @property
    def generates_prompt(self) -> bool:
        return isinstance(self.scene, PromptScene | TemplateScene) and isinstance(self.scene.prompt, GeneratedPrompt)


class ImageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

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
    model_config = ConfigDict(extra="ignore", frozen=True)

    input: ImageInfo | None = None
    output: list[OutputImage]


class SceneResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    data: SceneData


class ErrorBody(BaseModel):
    """Claid's one error shape. Read leniently: whatever comes, the code, type, message and details are kept."""

    model_config = ConfigDict(extra="ignore")

    error_code: str | None = None
    error_type: str | None = None  # an open set: auth, validation, general, billing, ... and new ones
    error_message: str | None = None
    error_details: dict[str, Any] = Field(default_factory=dict)  # any JSON under each key

    @classmethod
    def read(cls, payload: Any) -> ErrorBody:
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
