"""Browser tier: the review page in headless Chromium (the system's, /usr/bin/chromium) against the local stack."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backdrop_kit.review import ReviewServer, open_review

from ..integration.conftest import CUP, Pipeline, make_pipeline

__all__ = ["CHROMIUM", "PHOTO", "Pipeline", "Review", "make_pipeline"]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHOTO = "incoming/mugs/espresso-cup.png"


def need_chromium() -> None:
    """Skip without the system's Chromium, or fail when CI says the browser tests must run."""
    if CHROMIUM.is_file():
        return
    message = f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests"
    if os.environ.get("BACKDROP_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Review:
    """A local stack with one photo's four variants awaiting review, and the review server for it."""

    pipeline: Pipeline
    server: ReviewServer
    job: dict[str, Any]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
def review(make_pipeline: Callable[..., Pipeline]) -> Iterator[Review]:
    p = make_pipeline()
    p.stack.put_profile("mugs", {"number_of_images": 2, "renditions": "800 webp"})
    p.upload(PHOTO, CUP, metadata={"backdrop-publish": "review", "backdrop-number-of-images": "4"})
    p.drain()
    job = p.jobs()[PHOTO]
    assert job["status"] == "succeeded" and job["images"] == 4
    server = open_review(p.stack.publish())  # by name, as `backdrop review --stack` finds it
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Review(p, server, job)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def browser() -> Iterator[Any]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # CI runs as root, where Chromium's sandbox cannot start.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
