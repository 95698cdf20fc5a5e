"""Storefront renditions: the `renditions` setting's grammar and presets, and where each rendition of a published
image lives (its stable key beside the image, and the file Claid writes under the job's generated folder).

A setting is a short list of entries separated by commas: `2048 webp, 800 jpeg, 2000x2500 jpeg canvas, shopify`.
An entry is a size (`N` for N x N, or `WxH`), then a format and a fit in either order, each optional; or a preset
name. The format defaults to the published image's own; the fit to `crop` (exactly the box, cut by Claid's smart
crop so the product stays in it), or `canvas` (exactly the box, the whole image placed on it) or `bounds` (the whole
image inside the box, so one side may come out shorter). `none` (or nothing) asks for no renditions.

Stable keys: the Nth published image's rendition is `<N>-<size>.<ext>` in the photo's folder (`published/summer/
cup.png/1-2048.webp`, `…/1-2000x2500.jpeg`). A published image is `<N>.<ext>`, so the `-` keeps the two kinds apart,
and size plus format keep one photo's renditions apart: the setting refuses two entries with both equal.
"""

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backdrop.ids import stable_id

RenditionFormat = Literal["jpeg", "png", "webp", "avif"]
RenditionFit = Literal["crop", "canvas", "bounds"]
FORMATS: tuple[str, ...] = ("jpeg", "png", "webp", "avif")
FITS: tuple[str, ...] = ("crop", "canvas", "bounds")
_ALIASES = {"jpg": "jpeg"}
# Storefronts ask for 800 to 2,048 px; Shopify takes at most 5,000 x 5,000. Claid publishes no largest output or
# upscale factor, so ours stop at Shopify's largest: 4.9x a 1024 px render.
MIN_SIDE = 32
MAX_SIDE = 5000
# At most this many per published image: with four published variants, 20 edits for one choice.
MAX_RENDITIONS = 5
# Claid renders a 1:1 scene at 1024 x 1024 (its AI Background page); other sizes come from the answer.
RENDERED_SIDE = 1024

# Named storefront sizes (docs/decisions.md 38 gives the sources). Each expands to plain entries.
PRESETS: dict[str, str] = {
    "shopify": "2048 jpeg",  # Shopify's advice for square product images; zoom needs 800 px or more
    "etsy": "2000 jpeg",  # Etsy: at least 2,000 px on the shortest side for zoom
    "amazon": "2000 jpeg",  # Amazon: zoom from 1,000 px on the longest side; 1,600-2,000 advised
    "web": "1600 webp, 800 webp",  # a responsive pair for the shop's own pages
}
NONE = "none"
# `x` between the sides; the multiplication sign too, as people type it.
_SIZE = re.compile(r"^(\d{1,5})(?:[x\u00d7](\d{1,5}))?$", re.IGNORECASE)


class RenditionError(ValueError):
    """A renditions list that cannot be made; the message names the entry."""


class RenditionSpec(BaseModel):
    """One size a published image is rendered at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE)]
    height: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE)]
    format: RenditionFormat
    fit: RenditionFit = "crop"

    @property
    def size(self) -> str:
        """`2048` for a square, `2000x2500` otherwise: the part of the stable key that names the size."""
        return str(self.width) if self.width == self.height else f"{self.width}x{self.height}"

    @property
    def canonical(self) -> str:
        return " ".join([self.size, self.format, *([] if self.fit == "crop" else [self.fit])])

    def file_name(self, position: int) -> str:
        """Its file in the photo's published folder, for the image at `position` (1-4)."""
        if not 1 <= position <= 4:
            raise ValueError(f"no published image at position {position}")
        return f"{position}-{self.size}.{self.format}"

    @property
    def slug(self) -> str:
        """Its file name under the job's generated folder: one per size, fit and format."""
        return f"{self.width}x{self.height}-{self.fit}.{self.format}"

    def scale_from(self, width: int, height: int) -> float:
        """How much the source is enlarged to make this rendition: the box covered (crop) or filled (the others)."""
        ratios = (self.width / width, self.height / height)
        return max(ratios) if self.fit == "crop" else min(ratios)


def _entry(text: str, number: int, default_format: str) -> list[RenditionSpec]:
    words = text.split()
    where = f"entry {number} {text!r}"
    if len(words) == 1 and words[0].lower() in PRESETS:
        return list(parse_renditions(PRESETS[words[0].lower()], default_format))
    size = _SIZE.match(words[0]) if words else None
    if size is None:
        presets = ", ".join(PRESETS)
        raise RenditionError(f"{where}: start with a size (2048 or 2000x2500) or name a preset ({presets})")
    width = int(size.group(1))
    height = int(size.group(2) or size.group(1))
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise RenditionError(f"{where}: a side of {side} px is outside {MIN_SIDE} to {MAX_SIDE} px")
    fmt: str | None = None
    fit: str | None = None
    for word in words[1:]:
        lowered = _ALIASES.get(word.lower(), word.lower())
        if lowered in FORMATS and fmt is None:
            fmt = lowered
        elif lowered in FITS and fit is None:
            fit = lowered
        else:
            raise RenditionError(
                f"{where}: {word!r} is not a format ({', '.join(FORMATS)}) or a fit ({', '.join(FITS)}), "
                "or gives one twice"
            )
    fmt = fmt or _ALIASES.get(default_format, default_format)
    if fmt not in FORMATS:
        raise RenditionError(f"{where}: give a format ({', '.join(FORMATS)}); {fmt!r} cannot be a rendition's")
    return [RenditionSpec(width=width, height=height, format=fmt, fit=fit or "crop")]  # type: ignore[arg-type]


def parse_renditions(text: str, default_format: str = "jpeg") -> tuple[RenditionSpec, ...]:
    """The entries of a `renditions` setting, presets expanded, in order. Raises RenditionError naming the entry.
    An entry given twice (two presets with one size) counts once; two with one size and format but another fit
    would share a stable key, and are refused."""
    if text.strip().lower() in ("", NONE):
        return ()
    found: list[RenditionSpec] = []
    for number, part in enumerate(text.split(","), start=1):
        if not part.strip():
            raise RenditionError(f"entry {number} is empty: separate entries with one comma")
        for spec in _entry(part.strip(), number, default_format):
            clash = next((f for f in found if f.size == spec.size and f.format == spec.format), None)
            if clash == spec:
                continue
            if clash is not None:
                raise RenditionError(
                    f"entry {number} {part.strip()!r}: {spec.size} {spec.format} is already asked for ({clash.fit}); "
                    "one size and format can have one fit"
                )
            found.append(spec)
    if len(found) > MAX_RENDITIONS:
        raise RenditionError(f"{len(found)} renditions asked for; at most {MAX_RENDITIONS} per published image")
    return tuple(found)


def canonical(specs: tuple[RenditionSpec, ...]) -> str:
    return ", ".join(spec.canonical for spec in specs)


# The longest rendition file name a photo's folder can hold: the fourth image, the largest size, a 4-letter format.
LONGEST_RENDITION_NAME = f"4-{MAX_SIDE}x{MAX_SIDE - 1}.jpeg"


class PlannedRendition(BaseModel):
    """A rendition a selection asks for: where it will be published, and the edit that makes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    position: int  # of the published image it is made from (1 = the main image)
    variant: int
    spec: str  # canonical: "2048 webp", "2000x2500 jpeg canvas"
    width: int  # the box asked for; `bounds` may give one side less (the event says what Claid made)
    height: int
    format: str
    fit: str
    upscale: bool  # larger than the published image: Claid's upscale, priced as such
    bucket: str
    key: str  # the stable key a storefront links
    from_key: str  # what Claid writes under the job's generated folder; copied to `key`
    source_key: str  # the variant it is made from (under the generated prefix)
    edit_id: str  # one per made file: a second selection of the same variant and size pays nothing more


def rendition_folder(variant_key: str) -> str:
    """Renditions of a variant live under its job's generated folder, in a subfolder of their own (a listing of
    the job's variants takes only the files directly in its folder)."""
    folder = variant_key.rpartition("/")[0]
    return f"{folder}/renditions/"


def plan(
    spec: RenditionSpec,
    *,
    position: int,
    variant: int,
    bucket: str,
    folder: str,
    variant_key: str,
    source_size: tuple[int | None, int | None],
) -> PlannedRendition:
    """The rendition of the published image at `position` (variant `variant`, at `variant_key`)."""
    width, height = source_size
    # A size Claid did not tell (an answer lost and settled from storage) is taken as its 1:1 render.
    source = (width or RENDERED_SIDE, height or RENDERED_SIDE)
    from_key = f"{rendition_folder(variant_key)}{variant}-{spec.slug}"
    return PlannedRendition(
        position=position,
        variant=variant,
        spec=spec.canonical,
        width=spec.width,
        height=spec.height,
        format=spec.format,
        fit=spec.fit,
        upscale=spec.scale_from(*source) > 1,
        bucket=bucket,
        key=f"{folder}{spec.file_name(position)}",
        from_key=from_key,
        source_key=variant_key,
        edit_id=stable_id(bucket, from_key),
    )
