"""The key scheme of what is published, and S3's limit on a key: one place the processor (which refuses, before
any credit is spent, a photo whose published keys could not exist), the publisher and the renditions share.

Stable keys: the photo's whole path under the watched prefix, extension kept, is a folder, and the Nth chosen
variant is the file N.<ext> in it (`incoming/summer/cup.png` -> `published/summer/cup.png/1.jpeg`); its renditions
sit beside it (backdrop.renditions). See docs/decisions.md 33."""

from __future__ import annotations

import posixpath
import re

from backdrop.renditions import LONGEST_RENDITION_NAME

_FILE_EXTENSION = re.compile(r"[a-z0-9]+")


def published_folder(source_key: str, incoming_prefix: str, published_prefix: str) -> str:
    """`incoming/shoes/red shoe.png` -> `published/shoes/red shoe.png/`: the photo's whole path under the watched
    prefix, extension and all, so `red.png` and `red.jpg`, or `cup.png` and `cup-2.png`, get folders of their own.
    Only this photo's files are ever put in it. Raises ValueError for a key outside the watched prefix: stripping
    nothing from it would let `incoming/x` and `x` share a folder."""
    if not source_key.startswith(incoming_prefix):
        raise ValueError(f"{source_key!r} is not under {incoming_prefix!r}")
    return f"{published_prefix}{source_key.removeprefix(incoming_prefix)}/"


S3_MAX_KEY_BYTES = 1024  # S3's longest object key, counted in UTF-8 bytes
# The longest file name published in a photo's folder: a rendition of the fourth image at the longest size
# (`4.jpeg`, the fourth variant, is shorter).
LONGEST_PUBLISHED_NAME = LONGEST_RENDITION_NAME


def longest_published_key(source_key: str, incoming_prefix: str, published_prefix: str) -> str:
    """The longest key this photo's published images can have: what must fit S3's limit before any credit is
    spent on the photo, since a choice claimed for keys S3 refuses could never be made true."""
    return published_folder(source_key, incoming_prefix, published_prefix) + LONGEST_PUBLISHED_NAME


def published_key(folder: str, position: int, extension: str) -> str:
    """The Nth chosen variant, with its own extension, in the photo's folder: `…/red shoe.png/1.jpeg`, `…/2.jpeg`.
    The file name never holds a `/`, so the folder (the photo) is everything before the key's last one."""
    if not 1 <= position <= 4 or not _FILE_EXTENSION.fullmatch(extension):
        raise ValueError(f"no published file for variant position {position} with extension {extension!r}")
    return f"{folder}{position}.{extension}"


def file_extension(key: str, fmt: str) -> str:
    """The extension a published copy of `key` keeps: its own, else its format's (`jpg` for jpeg)."""
    ext = posixpath.splitext(key)[1].lstrip(".").lower()
    return ext or {"jpeg": "jpg"}.get(fmt, fmt)
