"""Where moto's S3 differs from S3 in ways backdrop depends on, the local stack behaves like S3: the corrections.

`install()` runs once inside the moto server process, before it serves a request. Each correction, what real S3
does, and the tests that hold the local stack to it (tests/integration/test_s3_fidelity.py, and
tests/unit/test_rfc2047_metadata.py for the metadata rules):

1. **Notifications name the version.** In a versioned bucket an event's `s3.object.versionId` is the version the
   request created, the one HeadObject returns; a bucket that was never versioned (or a `null` version) has no
   `versionId`. moto sends none. (`test_notification_names_the_version_head_object_returns`,
   `test_unversioned_bucket_notifications_have_no_version`)
2. **Notifications carry a `sequencer`.** A hexadecimal string; of two events on one key, the later one has the
   greater value once the shorter is left-padded with zeros. moto sends none.
   (`test_sequencer_grows_for_two_uploads_of_one_key_and_each_version_is_a_job`)
3. **Keys are URL-encoded the way S3 writes them:** form encoding (a space is `+`, a `+` is `%2B`, non-ASCII is
   UTF-8 percent-encoded) with `/` left as it is. moto encodes `/` too.
   (`test_key_arrives_url_encoded_and_is_decoded_right`)
4. **`eTag` (without quotes) and `size`** are the object's. moto already sends them; the test pins them so a moto
   upgrade cannot drop them unnoticed. (`test_notification_names_the_version_head_object_returns`)
5. **User metadata is stored as text and returned mail-safe (RFC 2047).** S3 decodes RFC 2047 encoded words
   in an `x-amz-meta-*` value before storing it (and reads raw non-ASCII header bytes as UTF-8), and returns a
   value that is not printable US-ASCII as an encoded word, `=?UTF-8?B?…?=`; printable ASCII comes back as it
   is. moto stores and returns the header exactly as sent. (`test_metadata_is_stored_decoded_and_returned_encoded`,
   `test_german_and_japanese_prompts_reach_claid_decoded`, `test_the_local_s3_stores_metadata_as_s3_returns_it`)

What cannot be corrected (or is not known precisely enough to imitate) is in docs/decisions.md, entry 32.
"""

from __future__ import annotations

import base64
import functools
import inspect
import threading
import time
from collections.abc import Callable
from email.errors import HeaderParseError
from email.header import decode_header
from typing import Any
from urllib.parse import quote_plus

_META_PREFIX = "x-amz-meta-"
_installed = False
_sequence_lock = threading.Lock()
_last_sequence = 0
# The sequencer of the event being sent: one write is one event, whatever number of destinations receive it.
_event = threading.local()


class MotoChanged(RuntimeError):
    """moto no longer has what a correction wraps: the local stack would silently lose S3's behaviour."""


def install() -> None:
    """Apply every correction. Idempotent; raises MotoChanged at once if moto's internals moved."""
    global _installed
    if _installed:
        return
    from moto.s3 import notifications, responses

    _replace(notifications, "send_event", ["account_id", "event_name", "bucket", "key"], _with_sequencer)
    _replace(notifications, "_get_s3_event", ["event_name", "bucket", "key", "notification_id"], _as_s3_writes_it)
    _replace(responses, "metadata_from_headers", ["headers"], _metadata_as_s3_stores_it)
    _installed = True


def _replace(module: Any, name: str, parameters: list[str], wrap: Callable[[Any], Any]) -> None:
    original = getattr(module, name, None)
    if not callable(original):
        raise MotoChanged(f"{module.__name__}.{name} is gone; the S3 corrections in {__name__} need updating")
    found = list(inspect.signature(original).parameters)
    if found != parameters:
        raise MotoChanged(
            f"{module.__name__}.{name} now takes {found}, not {parameters}; the S3 corrections in {__name__} "
            "need updating"
        )
    setattr(module, name, functools.wraps(original)(wrap(original)))


# --- notifications ---------------------------------------------------------------------------------------


def next_sequencer() -> str:
    """Later calls give greater values, in the format of S3's examples (18 upper-case hex digits). One counter
    orders every key's events, more than S3 promises (an order per key only)."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return f"{_last_sequence:018X}"


def _with_sequencer(original: Callable[..., None]) -> Callable[..., None]:
    def send_event(*args: Any, **kwargs: Any) -> None:
        _event.sequencer = next_sequencer()
        try:
            original(*args, **kwargs)
        finally:
            _event.sequencer = None

    return send_event


def _as_s3_writes_it(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj["versionId"] = version
            sequencer = getattr(_event, "sequencer", None)
            if sequencer:
                obj["sequencer"] = sequencer
        return event

    return get_s3_event


# --- user metadata ---------------------------------------------------------------------------------------


def stored_form(value: str) -> str:
    """An `x-amz-meta-*` header value as S3 keeps it and gives it back: decoded to text, then, unless it is
    printable US-ASCII, one RFC 2047 encoded word of its UTF-8 bytes."""
    text = _decode_encoded_words(_read_raw_utf8(value))
    if all(" " <= ch <= "~" for ch in text):
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _read_raw_utf8(value: str) -> str:
    # A WSGI server hands header bytes over as Latin-1 text; S3 reads non-ASCII header bytes as UTF-8.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _decode_encoded_words(value: str) -> str:
    """RFC 2047 encoded words decoded; a value whose encoded words do not decode is kept as it was sent, and so
    is one that arrived as raw non-ASCII text (it is text already)."""
    if not value.isascii():
        return value
    try:
        parts = decode_header(value)
    except HeaderParseError:
        return value
    text = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        try:
            # RFC 2231 lets a charset name carry a language (`UTF-8*de`).
            text.append(chunk.decode(charset.split("*")[0] if charset else "ascii"))
        except (LookupError, UnicodeDecodeError):
            return value
    return "".join(text)


def _metadata_as_s3_stores_it(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def metadata_from_headers(headers: Any) -> Any:
        metadata = original(headers)
        for name in list(metadata.keys()):
            if name.lower().startswith(_META_PREFIX) and isinstance(metadata[name], str):
                metadata[name] = stored_form(metadata[name])
        return metadata

    return metadata_from_headers
