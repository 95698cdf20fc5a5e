"""The emulator, like every reader of pictures in the kit, checks an input's pixel count from its header before it
decodes anything: a decompression bomb is refused with its size, never decoded."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from backdrop_kit.emulator.images import MAX_INPUT_PIXELS, load_product, open_bounded


def png_header(width: int, height: int) -> bytes:
    """The signature and IHDR chunk of an 8-bit greyscale PNG, then an IDAT that does not decode: enough for its
    size to be read, and proof that nothing past the header was."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"not zlib") + chunk(b"IEND", b"")


def test_the_bound_is_pillows_own_decompression_bomb_threshold():
    from PIL import Image

    assert MAX_INPUT_PIXELS == Image.MAX_IMAGE_PIXELS == 89_478_485


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, on the header; refused here
def test_an_input_just_over_the_bound_is_refused_with_its_size_before_decoding():
    side = 9460  # 89,491,600 pixels, 13,115 more than the bound
    with pytest.raises(ValueError) as refused:
        load_product(png_header(side, side))
    assert str(refused.value) == (
        "the object is 9,460x9,460 pixels (89.5 MP); an input may have at most 89,478,485 pixels (89.5 MP)"
    )


def test_an_input_within_the_bound_is_read_on():
    side = 9459  # 89,472,681 pixels: within the bound; its header is all open_bounded reads
    with open_bounded(io.BytesIO(png_header(side, side))) as img:
        assert img.size == (side, side)
    # Within the bound the pixels are decoded (and these are found wanting); a small one keeps the test small.
    with pytest.raises(ValueError, match=r"^the object is not a readable image \("):
        load_product(png_header(100, 100))


def test_a_bomb_past_twice_the_bound_is_refused_though_pillow_will_not_give_its_size():
    with pytest.raises(ValueError) as refused:
        load_product(png_header(30000, 30000))
    assert str(refused.value) == (
        "the object is more than 179.0 MP; an input may have at most 89,478,485 pixels (89.5 MP)"
    )


def test_what_is_not_a_picture_is_said_so():
    with pytest.raises(ValueError) as refused:
        load_product(b"these are not pixels")
    assert str(refused.value) == "the object is not a readable image (UnidentifiedImageError)"
