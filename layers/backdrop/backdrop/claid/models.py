"""Typed models of the AI Background request and response, as the contract in shared/ describes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backdrop.settings import AspectRatio, HexColor, Percent, Prompt


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Model):
    x: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    y: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class SceneObject(_Model):
    image_url: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https?|storage)://")]
    placement_type: Literal["absolute", "original"] | None = None
    scale: Annotated[float, Field(ge=0.1, le=1.0)] | None = None
    rotation_degree: Annotated[float, Field(ge=0, le=360)] | None = None
    position: Position | None = None


class GeneratedPrompt(_Model):
    generate: Literal[True] = True
    guidelines: str | None = None


class TextScene(_Model):
    """Template-free scene: a prompt or a generated one, model v1 or v2."""

    model: Literal["v1", "v2"] | None = None
    prompt: Prompt | GeneratedPrompt
    negative_prompt: Prompt | None = None
    aspect_ratio: AspectRatio | None = None
    color: HexColor | None = None  # v1
    steps: Annotated[int, Field(ge=1, le=49)] | None = None  # v1
    preference: Literal["fast", "optimal", "best"] | None = None  # v2


class TemplateScene(_Model):
    template_url: Annotated[str, Field(min_length=1, max_length=4096)]
    template_mode: Literal["transform", "adjust", "lock"] | None = None
    view: Literal["top", "front"] | None = None
    prompt: Prompt | None = None
    color: HexColor | None = None
    steps: Annotated[int, Field(ge=1, le=49)] | None = None


class ShadowScene(_Model):
    effect: Literal["shadows"] = "shadows"
    color: HexColor | None = None
    view: Literal["top", "front"] | None = None


class JpegFormat(_Model):
    type: Literal["jpeg"] = "jpeg"
    quality: Percent | None = None
    progressive: bool | None = None


class PngFormat(_Model):
    type: Literal["png"] = "png"
    compression: Literal["fast", "optimal", "best"] | None = None


class Compression(_Model):
    type: Literal["lossy", "lossless"]
    quality: Percent | None = None


class WebpFormat(_Model):
    type: Literal["webp"] = "webp"
    compression: Compression | None = None


class AvifFormat(_Model):
    type: Literal["avif"] = "avif"
    compression: Compression | None = None


FormatName = Literal["jpeg", "png", "webp", "avif"]
OutputFormatSpec = FormatName | JpegFormat | PngFormat | WebpFormat | AvifFormat


class Output(_Model):
    destination: Annotated[str, Field(pattern=r"^storage://[^/]+/")] | None = None
    number_of_images: Annotated[int, Field(ge=1, le=4)] | None = None
    format: OutputFormatSpec | None = None


class SceneRequest(_Model):
    object: SceneObject
    scene: TextScene | TemplateScene | ShadowScene
    output: Output | str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def images_requested(self) -> int:
        if isinstance(self.output, Output) and self.output.number_of_images is not None:
            return self.output.number_of_images
        return 4  # Claid's default when number_of_images is omitted

    @property
    def generates_prompt(self) -> bool:
        return isinstance(self.scene, TextScene) and isinstance(self.scene.prompt, GeneratedPrompt)


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
    model_config = ConfigDict(extra="ignore")

    error_code: str | int | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_details: dict[str, list[str] | str] | None = None
