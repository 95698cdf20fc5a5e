"""Temporary-bucket mode: the recorder keeps a tmp_url image only if it is the image Claid said it was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from backdrop.config import RecorderConfig
from backdrop.recording import DownloadRefused, Recorder

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
CONFIG = RecorderConfig(
    event_bus_name="bus", app_table_name="table", notification_topic_arn="arn:aws:sns:x", max_variant_bytes=1000
)


class FakeS3:
    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> None:
        self.kept.append(kwargs)


def recorder_serving(body: bytes, content_type: str | None) -> tuple[Recorder, FakeS3]:
    def handle(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type} if content_type else {})

    s3 = FakeS3()
    http = httpx.Client(transport=httpx.MockTransport(handle))
    return Recorder(config=CONFIG, s3=s3, sns=None, events=None, jobs=None, http=http), s3  # type: ignore[arg-type]


URL = "https://tmp.claid.ai/t/1.png?X-Amz-Signature=secret"


@pytest.mark.parametrize(("body", "content_type"), [(PNG, "image/png"), (PNG, None)])
def test_the_image_claid_described_is_kept(body, content_type):
    recorder, s3 = recorder_serving(body, content_type)
    recorder._copy(URL, "shop", "generated/x/variant-1.png", "png")
    assert s3.kept[0]["ContentType"] == "image/png" and s3.kept[0]["Body"] == body


@pytest.mark.parametrize(
    ("body", "content_type", "fmt", "message"),
    [
        (PNG, "text/html", "png", "'text/html'; Claid said png"),
        (JPEG, "image/jpeg", "png", "'image/jpeg'; Claid said png"),
        (JPEG, None, "png", "first bytes say jpeg"),
        (b"<html>sign in</html>", None, "jpeg", "first bytes say unknown"),
        (PNG * 20, "image/png", "png", "larger than 1,000 bytes"),
    ],
)
def test_anything_else_is_refused_and_nothing_is_kept(body, content_type, fmt, message):
    recorder, s3 = recorder_serving(body, content_type)
    with pytest.raises(DownloadRefused, match=message) as refused:
        recorder._copy(URL, "shop", f"generated/x/variant-1.{fmt}", fmt)
    assert s3.kept == [] and "Signature" not in str(refused.value)
