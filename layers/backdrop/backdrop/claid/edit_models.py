"""Typed models of Claid's Image Editing API (`POST /v1/image/edit`, shared/claid-image-edit.md). Apart from the
scene models (backdrop.claid.models), which every function's settings read, so that only the function that edits
images (the renditions) builds these classes at its cold start."""

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backdrop.claid.models import (
    AvifFormat,
    CompressionName,
    ImageInfo,
    Integer,
    JpegFormat,
    OutputImage,
    PngFormat,
    StorageUri,
    Url,
    WebpFormat,
    _Model,
)

# A side in pixels (the schema takes any integer; Claid's server refuses what is not positive, and so do we), "auto"
# (follows the aspect ratio), or a percentage of the input's side.
Pixels = Annotated[Integer, Field(ge=1)]
PercentSize = Annotated[str, Field(pattern=r"^(?:[1-9]\d*(?:\.\d+)?|0\.\d*[1-9]\d*)%$")]
Side = Pixels | Literal["auto"] | PercentSize
FitName = Literal["crop", "cover", "bounds", "canvas", "outpaint"]
Share = Annotated[str, Field(pattern=r"^\d+(?:\.\d+)?%$")]


class CropFit(_Model):
    type: Literal["crop"]
    crop: Literal["center", "smart"] | None = None


class CoverFit(_Model):
    type: Literal["cover"]


class BoundsFit(_Model):
    type: Literal["bounds"]


class CanvasFit(_Model):
    type: Literal["canvas"]


class OutpaintFit(_Model):
    type: Literal["outpaint"]
    feathering: Share | None = None
    outpaint_by: Annotated[str, Field(pattern=r"^\d+(?:\.\d+)?(?:%|px)(?: \d+(?:\.\d+)?(?:%|px))?$")] | None = None


Fit = FitName | CropFit | CoverFit | BoundsFit | CanvasFit | OutpaintFit


def _kind(side: int | str | None) -> str | None:
    if side is None or side == "auto":
        return None
    return side if isinstance(side, str) else "pixels"  # a percentage is its own kind: the same one on both sides


class Resizing(_Model):
    width: Side | None = None
    height: Side | None = None
    fit: Fit | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.width == "auto" and self.height == "auto":
            raise ValueError("width and height cannot both be auto")
        kinds = {k for k in (_kind(self.width), _kind(self.height)) if k is not None}
        if len(kinds) > 1:
            raise ValueError("width and height are one kind: both pixels, or one percentage (or auto)")
        return self


class PhotoUpscale(_Model):
    type: Literal["photo"]
    version: Literal["2", "3"]


Upscale = Literal["smart_enhance", "smart_resize", "faces", "digital_art", "photo"] | PhotoUpscale


class Restorations(_Model):
    upscale: Upscale | None = None
    decompress: Literal["moderate", "strong", "auto"] | None = None
    polish: Annotated[bool, Field(strict=True)] | None = None


class Operations(_Model):
    resizing: Resizing | None = None
    restorations: Restorations | None = None
    padding: Annotated[str, Field(pattern=r"^\d+(?:\.\d+)?%(?: \d+(?:\.\d+)?%)?$")] | None = None


class TiffFormat(_Model):
    type: Literal["tiff"]
    compression: CompressionName | None = None


EditFormatName = Literal["jpeg", "png", "webp", "avif", "tiff"]
EditFormatSpec = EditFormatName | JpegFormat | PngFormat | WebpFormat | AvifFormat | TiffFormat


class RgbSpace(_Model):
    type: Literal["RGB"]


class CmykSpace(_Model):
    type: Literal["CMYK"]
    color_profile: Annotated[str, Field(min_length=1)] | None = None


class OutputMetadata(_Model):
    dpi: Annotated[Integer, Field(ge=1)] | None = None
    color_space: Literal["RGB", "CMYK"] | RgbSpace | CmykSpace | None = None


class EditOutput(_Model):
    destination: StorageUri | None = None
    format: EditFormatSpec | None = None
    metadata: OutputMetadata | None = None


class EditRequest(_Model):
    # The schema takes 4,096 characters, the prose 512: a storage:// input stays far under both.
    input: Url
    operations: Operations
    output: EditOutput | StorageUri | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def upscales(self) -> bool:
        return self.operations.restorations is not None and self.operations.restorations.upscale is not None


class EditData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    input: ImageInfo | None = None
    output: OutputImage  # one image per edit


class EditResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    data: EditData
