"""Uploads: S3 notifications read from a queue message, keys and metadata decoded, keys guarded, images checked by
their bytes."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from backdrop.setting_layers import METADATA_PREFIX

SNIFF_BYTES = 64  # enough of an image's first bytes to tell its format
# The content type each image format (or file extension) is stored with.
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}


def content_type(name: str) -> str:
    """The content type of an image format or extension; a name we do not know is stored as plain bytes."""
    return CONTENT_TYPES.get(name, "application/octet-stream")


class UploadRejected(Exception):
    """An upload that will never be processed as it is; `reason` is a stable code, the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class MalformedMessage(Exception):
    """A queue message that is not an S3 notification at all: nothing can be recorded for it."""


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str  # decoded
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    event_time: str | None = None
    sequencer: str | None = None  # orders this key's events: S3's version order (backdrop.versions)

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.key)


@dataclass(frozen=True)
class UploadFacts:
    """What HeadObject and the first bytes tell about an upload."""

    size: int
    image_type: str
    content_type: str | None
    etag: str | None
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: str | None = None  # ISO 8601, UTC


def uploads_from_message(body: str) -> list[Upload]:
    """The uploads named in one SQS message body. An s3:TestEvent yields none."""
    try:
        payload = json.loads(body)
    except (TypeError, ValueError):
        raise MalformedMessage("message body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedMessage("message body is not a JSON object")
    if payload.get("Event") == "s3:TestEvent":
        return []
    records = payload.get("Records")
    if not isinstance(records, list):
        raise MalformedMessage("message body has no S3 'Records' list")
    uploads = []
    for record in records:
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            s3 = record["s3"]
            obj: dict[str, Any] = s3["object"]
            if not isinstance(obj["key"], str) or not isinstance(s3["bucket"]["name"], str):
                raise MalformedMessage("S3 record's bucket name or object key is not a string")
            uploads.append(
                Upload(
                    bucket=s3["bucket"]["name"],
                    # S3 encodes keys like an HTML form: '+' is a space, '%2B' a plus.
                    key=unquote_plus(obj["key"]),
                    version_id=obj.get("versionId") or None,
                    etag=obj.get("eTag") or None,
                    size=obj.get("size"),
                    event_time=record.get("eventTime"),
                    sequencer=obj.get("sequencer") if isinstance(obj.get("sequencer"), str) else None,
                )
            )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"S3 record lacks {exc}") from None
    return uploads


def check_key(key: str, incoming_prefix: str) -> None:
    """Loop guard: only keys under the incoming prefix are work, whatever the notification filter says."""
    if not key.startswith(incoming_prefix):
        raise UploadRejected("outside_incoming_prefix", f"key {key!r} is not under {incoming_prefix!r}; ignored")
    if key.endswith("/"):
        raise UploadRejected("not_a_file", f"key {key!r} is a folder marker, not a photo")


def sniff_image_type(head: bytes) -> str | None:
    """The image format from the first bytes, for the formats Claid accepts; None if it is none of them."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "heic"
    return None


def inspect_upload(s3: Any, upload: Upload, *, max_bytes: int) -> UploadFacts:
    """HeadObject plus a ranged GET of the first bytes: never the whole file."""
    version = {"VersionId": upload.version_id} if upload.version_id else {}
    try:
        head = s3.head_object(Bucket=upload.bucket, Key=upload.key, **version)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            raise UploadRejected("object_missing", f"s3://{upload.bucket}/{upload.key} no longer exists") from None
        raise
    size = int(head.get("ContentLength", 0))
    if size == 0:
        raise UploadRejected("empty_file", f"{upload.file_name} is empty (0 bytes)")
    if size > max_bytes:
        raise UploadRejected("too_large", f"{upload.file_name} is {size:,} bytes; the limit is {max_bytes:,} bytes")
    first = s3.get_object(Bucket=upload.bucket, Key=upload.key, Range=f"bytes=0-{SNIFF_BYTES - 1}", **version)
    with first["Body"] as body:
        leading = body.read(SNIFF_BYTES)
    image_type = sniff_image_type(leading)
    if image_type is None:
        declared = head.get("ContentType") or "unknown type"
        raise UploadRejected(
            "not_an_image",
            f"{upload.file_name} is not an image Claid accepts ({declared}); "
            "send BMP, GIF, JPEG, PNG, TIFF, WEBP, AVIF or HEIC",
        )
    return UploadFacts(
        size=size,
        image_type=image_type,
        content_type=head.get("ContentType"),
        etag=(head.get("ETag") or "").strip('"') or None,
        version_id=head.get("VersionId") or upload.version_id,
        metadata=read_metadata(head.get("Metadata") or {}),
        last_modified=_iso(head.get("LastModified")),
    )


def _iso(value: Any) -> str | None:
    """HeadObject's LastModified (a datetime from boto3) as ISO 8601 UTC text, which sorts as time does."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    return None


def read_metadata(raw: Mapping[str, str]) -> dict[str, str]:
    """User metadata as HeadObject gives it, names lower-cased and our `backdrop-*` values as the text the uploader
    meant. Other values are not ours and stay as S3 returned them."""
    metadata = {}
    for name, value in raw.items():
        name = name.lower()
        if name.startswith(METADATA_PREFIX):
            try:
                value = decode_rfc2047(value)
            except ValueError as exc:
                raise UploadRejected(
                    "bad_metadata", f"x-amz-meta-{name} looks RFC 2047-encoded but does not decode: {exc}"
                ) from None
        metadata[name] = value
    return metadata


def decode_rfc2047(value: str) -> str:
    """The text of a metadata value. S3 returns any value that is not printable US-ASCII as RFC 2047 encoded words
    (`=?UTF-8?B?…?=`, or Q encoding, any charset, several words); printable ASCII comes back as it is.
    Raises ValueError for an encoded word that does not decode: S3 writes only good ones, so a bad one was written
    by the uploader, and sending its raw text to Claid as a prompt would spend credits on what nobody meant."""
    # Not S3's mail-safe form (already text, e.g. from a client library that decodes): nothing to undo.
    if "=?" not in value or not value.isascii():
        return value
    try:
        parts = decode_header(value)
    except HeaderParseError as exc:
        raise ValueError(str(exc)) from None
    text = []
    for chunk, charset in parts:
        if isinstance(chunk, str):  # no encoded word in the whole value
            text.append(chunk)
            continue
        if charset is None:
            text.append(chunk.decode("ascii"))
            continue
        # RFC 2231 lets the charset carry a language: `UTF-8*de`.
        codec = charset.split("*")[0]
        try:
            text.append(chunk.decode(codec))
        except LookupError:
            raise ValueError(f"unknown charset {charset!r}") from None
        except UnicodeDecodeError:
            raise ValueError(f"its bytes are not valid {charset}") from None
    return "".join(text)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def output_stem(key: str) -> str:
    """A name for the output folder from the upload's file name, safe in a storage:// URI and an S3 key."""
    stem = posixpath.splitext(posixpath.basename(key))[0]
    slug = _UNSAFE.sub("-", stem).strip("-.")
    return slug[:80] or "photo"


def profile_from_key(key: str, incoming_prefix: str) -> str | None:
    """`incoming/<profile>/<file>` chooses a profile; a file directly under incoming/ uses none."""
    rest = key.removeprefix(incoming_prefix)
    head, sep, _ = rest.partition("/")
    return head if sep and head else None
