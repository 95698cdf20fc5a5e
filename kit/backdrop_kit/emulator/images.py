"""Real variants: the product composited on a generated background, encoded as asked."""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from pathlib import Path
from typing import IO

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from backdrop_kit.emulator.schema import OutputSpec, Placement, Scene

BASE_PIXELS = 1024 * 1024
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
PNG_LEVELS = {"fast": 1, "optimal": 6, "best": 9}
ACCEPTED_INPUT = {"BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP", "AVIF", "MPO"}
# The most pixels an input may have, for the emulator and for every picture the kit reads: Pillow's own
# decompression-bomb threshold (Image.MAX_IMAGE_PIXELS), a 9,459-pixel square. Claid documents no limit, so this
# one is ours. A PNG of under a megabyte can claim 30000x30000 pixels and take gigabytes to decode: the size is
# read from the header and checked before a single pixel is.
MAX_INPUT_PIXELS = 89_478_485
# open_bounded refuses such images itself, with a reason; Pillow's warning on the way would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def canvas_size(aspect_ratio: str) -> tuple[int, int]:
    """About one megapixel, both sides multiples of 64 (Claid does not document its sizes; this is ours)."""
    w, h = (int(x) for x in aspect_ratio.split(":"))
    ratio = w / h
    width = round(math.sqrt(BASE_PIXELS * ratio) / 64) * 64
    height = round(math.sqrt(BASE_PIXELS / ratio) / 64) * 64
    return width, height


def _palette(scene: Scene, index: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    seed = hashlib.sha256(f"{scene.prompt}|{scene.autoprompt}|{scene.color}|{index}".encode()).digest()
    base = tuple(int(scene.color[i : i + 2], 16) for i in (1, 3, 5)) if scene.color else (seed[0], seed[1], seed[2])
    top = tuple(min(255, int(c * 0.55 + 115)) for c in base)
    bottom = tuple(int(c * 0.6) + seed[3 + i] % 40 for i, c in enumerate(base))
    return top, bottom  # type: ignore[return-value]


def background(scene: Scene, size: tuple[int, int], index: int) -> Image.Image:
    width, height = size
    if scene.color == "transparent":  # the shadows effect on no background at all (PNG output)
        return Image.new("RGBA", size, (0, 0, 0, 0))
    top, bottom = _palette(scene, index)
    gradient = Image.linear_gradient("L").resize(size)
    img = ImageOps.colorize(gradient, top, bottom).convert("RGBA")
    draw = ImageDraw.Draw(img)
    horizon = int(height * (0.55 + 0.1 * (index % 3) / 2))
    floor = (*tuple(max(0, c - 35) for c in bottom), 255)
    draw.rectangle((0, horizon, width, height), fill=floor)  # a surface to stand on
    seed = hashlib.sha256(f"{scene.prompt}|{index}".encode()).digest()
    for i in range(4):  # soft shapes so variants differ visibly
        cx, cy, r = seed[i * 3] / 255 * width, seed[i * 3 + 1] / 255 * horizon, 40 + seed[i * 3 + 2] % 160
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*top, 90))
    return img.filter(ImageFilter.BoxBlur(6))


def compose(product: Image.Image, scene: Scene, placement: Placement, size: tuple[int, int], index: int) -> Image.Image:
    canvas = background(scene, size, index)
    width, height = size
    item = product.convert("RGBA")
    if placement.placement_type == "original":
        scaled = ImageOps.contain(item, size)
        x, y = (width - scaled.width) // 2, (height - scaled.height) // 2
    elif placement.placement_type == "padding":
        pad_h, pad_w = placement.padding or ((0.0, "px"), (0.0, "px"))
        inner = (
            max(1, width - 2 * _pixels(pad_w, width)),
            max(1, height - 2 * _pixels(pad_h, height)),
        )
        scaled = ImageOps.contain(item, inner)
        x, y = (width - scaled.width) // 2, (height - scaled.height) // 2
    else:
        box = (max(1, int(width * placement.scale)), max(1, int(height * placement.scale)))
        scaled = ImageOps.contain(item, box)
        if placement.rotation:
            scaled = scaled.rotate(-placement.rotation, expand=True, resample=Image.Resampling.BICUBIC)
        x = int(placement.x * width - scaled.width / 2)
        # Claid's OpenAPI puts y=0 at the bottom edge; images count rows from the top (docs/decisions.md).
        y = int((1.0 - placement.y) * height - scaled.height / 2)
    # A soft contact shadow, then the product; paste() clips at the canvas edges.
    shadow_mask = scaled.getchannel("A").point(lambda a: a // 3).filter(ImageFilter.BoxBlur(12))
    canvas.paste((0, 0, 0, 255), (x + 12, y + 16, x + 12 + scaled.width, y + 16 + scaled.height), shadow_mask)
    canvas.paste(scaled, (x, y), scaled)
    return canvas


def _pixels(size: tuple[float, str], side: int) -> int:
    value, unit = size
    pixels = value / 100 * side if unit == "%" else value
    return min(int(pixels), side // 2)


def encode(image: Image.Image, spec: OutputSpec) -> bytes:
    buf = io.BytesIO()
    fmt = spec.format
    opts = spec.options
    if fmt == "jpeg":
        image.convert("RGB").save(
            buf, "JPEG", quality=opts.get("quality", 85), progressive=opts.get("progressive", True)
        )
    elif fmt == "png":
        image.save(buf, "PNG", compress_level=PNG_LEVELS[opts.get("compression") or "optimal"])
    elif fmt == "webp":
        image.save(buf, "WEBP", lossless=opts.get("lossless", False), quality=opts.get("quality", 75), method=0)
    else:
        # Pillow's AVIF writer has no lossless switch: lossless is approximated with quality 100.
        quality = 100 if opts.get("lossless") else opts.get("quality", 50)
        image.save(buf, "AVIF", quality=quality, speed=10)
    return buf.getvalue()


def open_bounded(source: str | Path | IO[bytes]) -> Image.Image:
    """The picture with its header read and no pixel decoded. Raises ValueError saying why when it is not a
    readable image or has more than MAX_INPUT_PIXELS pixels."""
    limit = f"an input may have at most {MAX_INPUT_PIXELS:,} pixels ({MAX_INPUT_PIXELS / 1e6:.1f} MP)"
    try:
        img = Image.open(source)
    except Image.DecompressionBombError:  # Pillow's own refusal, at twice its threshold: the size stays unknown
        raise ValueError(f"more than {2 * MAX_INPUT_PIXELS / 1e6:.1f} MP; {limit}") from None
    except Exception as exc:  # Pillow raises many kinds for bad input
        raise ValueError(f"not a readable image ({type(exc).__name__})") from None
    if img.width * img.height > MAX_INPUT_PIXELS:
        img.close()
        raise ValueError(f"{img.width:,}x{img.height:,} pixels ({img.width * img.height / 1e6:.1f} MP); {limit}")
    return img


def load_product(data: bytes) -> Image.Image:
    """Raises ValueError with a reason when the bytes are not an image Claid would take."""
    try:
        img = open_bounded(io.BytesIO(data))
    except ValueError as exc:
        raise ValueError(f"the object is {exc}") from None
    try:
        img.load()
    except Exception as exc:  # a header that reads but pixels that do not
        raise ValueError(f"the object is not a readable image ({type(exc).__name__})") from None
    if img.format not in ACCEPTED_INPUT:
        raise ValueError(f"unsupported input format {img.format}")
    return img
