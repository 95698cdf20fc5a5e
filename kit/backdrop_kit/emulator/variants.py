"""Each distinct variant composed and encoded once: the emulator's CPU goes to what differs, not to repeats.

Composing and encoding a 1-megapixel variant costs about 0.4 s of CPU, and the result depends only on the input's
bytes, the scene, the placement, the size, the variant's index and the output format with its options (both
functions are deterministic). A burst of one sample photo asks for the same few variants a thousand times: they
are made once and the same bytes are answered again, exactly what making them again would give. Bounded, so a
long session of different photos cannot grow it without end.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict

from PIL import Image

from backdrop_kit.emulator import images
from backdrop_kit.emulator.schema import OutputSpec, Placement, Scene

MAX_KEPT = 32  # encoded variants (a 1-megapixel PNG is 1-2 MB)

_kept: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


def _key(
    input_sha256: str, scene: Scene, placement: Placement, size: tuple[int, int], index: int, output: OutputSpec
) -> str:
    # Where the variant is written and how many were asked for do not change its pixels or its encoding.
    encoding = {"format": output.format, "options": output.options}
    return json.dumps([input_sha256, asdict(scene), asdict(placement), size, index, encoding], sort_keys=True)


def variant(
    input_sha256: str,
    product: Image.Image,
    scene: Scene,
    placement: Placement,
    size: tuple[int, int],
    index: int,
    output: OutputSpec,
) -> bytes:
    """The encoded variant `index` of `product` (whose bytes hash to `input_sha256`) on `scene`."""
    key = _key(input_sha256, scene, placement, size, index, output)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    # Made outside the lock: two requests for one new variant may both make it, and both get the same bytes.
    encoded = images.encode(images.compose(product, scene, placement, size, index), output)
    with _lock:
        _kept[key] = encoded
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    return encoded
