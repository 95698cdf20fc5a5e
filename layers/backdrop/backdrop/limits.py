"""Limits on what an uploader or a profile author controls (metadata values, profile names and documents):
checked before any setting is resolved, each refusal naming the limit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backdrop.setting_layers import METADATA_PREFIX, metadata_keys
from backdrop.settings import SettingsError
from backdrop.uploads import UploadRejected

# S3 caps all user metadata at 2 KB; a standard SSM parameter holds 4 KB. The limits below sit inside those, so a
# refusal names our limit rather than failing somewhere deeper.
MAX_METADATA_VALUE_CHARS = 2048
MAX_PROFILE_DOCUMENT_CHARS = 4096
MAX_PROFILE_VALUE_CHARS = 2048
MAX_PROFILE_FIELDS = 64
# A profile name becomes part of an SSM parameter name: no '/' (no climbing to another path), no wildcards.
PROFILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Control characters (newlines included) have no place in a prompt and would forge lines in plain-text logs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _describe(text: str) -> str:
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Our `backdrop-*` metadata: each setting given once, values bounded and printable. Other metadata is not
    ours to judge."""
    try:
        metadata_keys(metadata)
    except SettingsError as exc:
        raise UploadRejected("bad_metadata", str(exc)) from None
    for key, value in metadata.items():
        if not key.lower().startswith(METADATA_PREFIX):
            continue
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise UploadRejected(
                "bad_metadata", f"x-amz-meta-{key} is {len(value)} characters; at most {MAX_METADATA_VALUE_CHARS}"
            )
        if _CONTROL.search(value):
            raise UploadRejected("bad_metadata", f"x-amz-meta-{key} holds control characters: {_describe(value)}")


def check_profile_name(name: str) -> None:
    if not PROFILE_NAME.fullmatch(name):
        raise UploadRejected(
            "bad_profile",
            f"profile name {_describe(name)} may hold only letters, digits, '_', '.' and '-' (1 to 64 of them)",
        )


def check_profile_document(name: str, raw: str, values: Any) -> None:
    """A profile is a flat JSON object of settings: scalar values, bounded, printable."""
    if len(raw) > MAX_PROFILE_DOCUMENT_CHARS:
        raise UploadRejected(
            "bad_profile", f"profile {name!r} is {len(raw)} characters; at most {MAX_PROFILE_DOCUMENT_CHARS}"
        )
    if not isinstance(values, dict):
        raise UploadRejected("bad_profile", f"profile {name!r} is not a JSON object")
    if len(values) > MAX_PROFILE_FIELDS:
        raise UploadRejected("bad_profile", f"profile {name!r} has {len(values)} fields; at most {MAX_PROFILE_FIELDS}")
    for field, value in values.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise UploadRejected("bad_profile", f"profile {name!r}: {field} must be a string, number or boolean")
        if isinstance(value, str) and len(value) > MAX_PROFILE_VALUE_CHARS:
            raise UploadRejected(
                "bad_profile",
                f"profile {name!r}: {field} is {len(value)} characters; at most {MAX_PROFILE_VALUE_CHARS}",
            )
        if isinstance(value, str) and _CONTROL.search(value):
            raise UploadRejected("bad_profile", f"profile {name!r}: {field} holds control characters")
