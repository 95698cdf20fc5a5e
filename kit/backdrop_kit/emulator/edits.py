"""Real pixels for an image edit: the input resized, cropped or placed as the fit says, upscaled (a sharpening
stand-in for Claid's models), padded, and encoded as asked, with its DPI and colour space.

How size and fit combine is the contract's (shared/claid-image-edit.md, from Claid's Resizing page): no side
given, the size is unchanged; one side with the default crop, the other side stays and the image is cropped; one
side with another fit (or a side of "auto"), the other follows the aspect ratio; both sides: crop covers the box
and cuts it to size, cover covers it and may come out larger, bounds fits inside and may come out smaller, canvas
fits inside and fills the rest of the box with the background colour, outpaint fits inside and fills the rest
with more background. Nothing is ever stretched.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageOps

from backdrop_kit.emulator.edit_schema import EditOutputSpec, EditRequest, Side
from backdrop_kit.emulator.images import MAX_INPUT_PIXELS, MIME, encode
from backdrop_kit.emulator.schema import OutputSpec

EDIT_MIME = {**MIME, "tiff": "image/tiff"}
_WHITE = (255, 255, 255, 255)


class TooLarge(ValueError):
    """The output would pass the emulator's pixel bound (Claid publishes no largest output)."""


def _length(side: Side, source: int) -> int:
    if side.pixels is not None:
        return side.pixels
    assert side.share is not None
    return max(1, round(source * side.share))


def box(resize_width: Side | None, resize_height: Side | None, fit: str, size: tuple[int, int]) -> tuple[int, int]:
    """The box the image is fitted to, from the sides asked for (see the module's docstring)."""
    width, height = size
    w = resize_width if resize_width is not None and not resize_width.auto else None
    h = resize_height if resize_height is not None and not resize_height.auto else None
    auto = (resize_width is not None and resize_width.auto) or (resize_height is not None and resize_height.auto)
    if w is None and h is None:
        return size
    if w is not None and h is not None:
        return _length(w, width), _length(h, height)
    follows = auto or fit != "crop"
    if w is not None:
        target = _length(w, width)
        return target, (max(1, round(height * target / width)) if follows else height)
    assert h is not None
    target = _length(h, height)
    return (max(1, round(width * target / height)) if follows else width), target


def _scaled(image: Image.Image, size: tuple[int, int], upscale: str | None) -> Image.Image:
    """Resized to `size`; enlarged by a model when asked (sharpened here, a stand-in), by interpolation if not."""
    if size == image.size:
        return image
    growing = size[0] > image.width or size[1] > image.height
    resized = image.resize(size, Image.Resampling.LANCZOS if upscale else Image.Resampling.BICUBIC)
    if growing and upscale:
        resized = resized.filter(ImageFilter.UnsharpMask(radius=2, percent=120, threshold=2))
    return resized


def _salient_centre(image: Image.Image) -> tuple[float, float]:
    """Where the product is, for a smart crop: the middle of what differs from the picture's corner (taken as the
    background), as shares of the width and height. A stand-in for Claid's saliency."""
    rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    differs = ImageOps.grayscale(ImageChops.difference(rgb, background)).point(lambda v: 255 if v > 24 else 0)
    bbox = differs.getbbox()
    if bbox is None:
        return 0.5, 0.5
    return (bbox[0] + bbox[2]) / 2 / image.width, (bbox[1] + bbox[3]) / 2 / image.height


def _crop(image: Image.Image, target: tuple[int, int], centre: tuple[float, float]) -> Image.Image:
    width, height = target
    left = min(max(0, round(centre[0] * image.width - width / 2)), image.width - width)
    top = min(max(0, round(centre[1] * image.height - height / 2)), image.height - height)
    return image.crop((left, top, left + width, top + height))


def _fill(colour: str | None, transparent_ok: bool) -> tuple[int, int, int, int]:
    if colour == "transparent":
        return (0, 0, 0, 0) if transparent_ok else _WHITE
    if colour:
        return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)
    return _WHITE


def _outpainted(image: Image.Image, target: tuple[int, int], feathering: float) -> Image.Image:
    """More background around the image: the picture itself, stretched to the box and blurred (a stand-in for a
    generated one), under the image; its edge softened over `feathering` per cent."""
    backdrop = image.convert("RGBA").resize(target, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(24))
    item = image.convert("RGBA")
    if feathering > 0:
        edge = max(1, round(min(item.size) * feathering / 100))
        mask = Image.new("L", item.size, 0)
        mask.paste(255, (edge, edge, item.width - edge, item.height - edge))
        item.putalpha(Image.composite(item.getchannel("A"), mask, mask.filter(ImageFilter.GaussianBlur(edge / 2))))
    backdrop.alpha_composite(item, ((target[0] - item.width) // 2, (target[1] - item.height) // 2))
    return backdrop


def edit(image: Image.Image, request: EditRequest) -> Image.Image:
    """The edited picture. Raises TooLarge past the emulator's pixel bound."""
    picture = image.convert("RGBA")
    transparent_ok = request.output.format in ("png", "webp", "avif", "tiff")
    if request.decompress:
        picture = picture.filter(ImageFilter.MedianFilter(3))  # JPEG artefacts smoothed: a stand-in
    resize = request.resize
    if resize is not None:
        target = box(resize.width, resize.height, resize.fit, picture.size)
        _bounded(target)
        width, height = picture.size
        cover = max(target[0] / width, target[1] / height)
        contain = min(target[0] / width, target[1] / height)
        if resize.fit in ("crop", "cover"):
            scaled = (max(target[0], round(width * cover)), max(target[1], round(height * cover)))
            _bounded(scaled)
            picture = _scaled(picture, scaled, request.upscale)
            if resize.fit == "crop":
                centre = _salient_centre(picture) if resize.crop == "smart" else (0.5, 0.5)
                picture = _crop(picture, target, centre)
        else:
            inner = (max(1, min(target[0], round(width * contain))), max(1, min(target[1], round(height * contain))))
            picture = _scaled(picture, inner, request.upscale)
            if resize.fit == "canvas":
                canvas = Image.new("RGBA", target, _fill(request.background, transparent_ok))
                canvas.alpha_composite(picture, ((target[0] - inner[0]) // 2, (target[1] - inner[1]) // 2))
                picture = canvas
            elif resize.fit == "outpaint":
                picture = _outpainted(picture, target, resize.feathering)
    elif request.upscale:
        picture = picture.filter(ImageFilter.UnsharpMask(radius=2, percent=80, threshold=2))
    if request.polish:
        picture = picture.filter(ImageFilter.SHARPEN)
    if request.padding is not None:
        vertical, horizontal = request.padding
        pad = (round(picture.width * horizontal / 100), round(picture.height * vertical / 100))
        padded = (picture.width + 2 * pad[0], picture.height + 2 * pad[1])
        _bounded(padded)
        canvas = Image.new("RGBA", padded, _fill(request.background, transparent_ok))
        canvas.alpha_composite(picture, pad)
        picture = canvas
    return picture


def _bounded(size: tuple[int, int]) -> None:
    if size[0] * size[1] > MAX_INPUT_PIXELS:
        raise TooLarge(
            f"{size[0]:,}x{size[1]:,} pixels is past the largest image the emulator makes ({MAX_INPUT_PIXELS:,} pixels)"
        )


def encode_edit(image: Image.Image, spec: EditOutputSpec) -> bytes:
    """The picture in the asked format with its options, DPI and colour space."""
    if spec.format == "tiff" or spec.dpi or spec.color_space == "CMYK":
        buf = io.BytesIO()
        picture: Image.Image = image
        cmyk = spec.color_space == "CMYK" and spec.format in ("jpeg", "tiff")  # the formats that carry CMYK
        if cmyk:
            picture = image.convert("CMYK")
        elif spec.format == "jpeg":
            picture = image.convert("RGB")
        options: dict[str, Any] = {"dpi": (spec.dpi, spec.dpi)} if spec.dpi else {}
        if spec.format == "tiff":
            lossy = spec.options.get("compression") == "lossy"
            picture = picture.convert("RGB") if lossy and not cmyk else picture
            picture.save(buf, "TIFF", compression="jpeg" if lossy else "tiff_adobe_deflate", **options)
            return buf.getvalue()
        if spec.format == "jpeg":
            picture.save(
                buf,
                "JPEG",
                quality=spec.options.get("quality", 85),
                progressive=spec.options.get("progressive", True),
                **options,
            )
            return buf.getvalue()
        if spec.format == "png":
            picture.save(buf, "PNG", **options)
            return buf.getvalue()
    return encode(image, OutputSpec(format=spec.format, options=spec.options))


def mime_of(fmt: str) -> str:
    return EDIT_MIME[fmt]
