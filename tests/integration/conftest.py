"""Integration tier: moto in server mode and the Claid emulator, both over real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.runner import Runner
from backdrop_kit.stack import LocalStack, StackOptions
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"
CUP = (SAMPLES / "espresso-cup.png").read_bytes()
VASE = (SAMPLES / "teal-vase-cutout.png").read_bytes()


class Pipeline:
    """A started local stack plus a runner, with the few verbs the tests need."""

    def __init__(self, stack: LocalStack, workers: int | None = None) -> None:
        self.stack = stack
        self.runner = Runner(stack, processor_workers=workers)
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")
        self.bucket = stack.uploads_bucket

    def upload(
        self, key: str, body: bytes = CUP, metadata: dict[str, str] | None = None, content_type: str = "image/png"
    ) -> dict[str, Any]:
        return self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {}, ContentType=content_type
        )

    def drain(self, timeout: float = 120.0) -> None:
        self.runner.drain(timeout=timeout)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {item["source_key"]: item for item in self.stack.job_items()}

    def generated(self) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="generated/")
        return sorted(o["Key"] for o in answer.get("Contents", []))

    def image(self, key: str) -> Image.Image:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return Image.open(io.BytesIO(body))

    def queue_depth(self, logical_id: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def scene_calls(self, status: int | None = None) -> list[Any]:
        """Claid's scene/create calls (image edits are calls of another kind)."""
        return [c for c in self.stack.emulator.calls if c.kind == "scene" and (status is None or c.status == status)]


@pytest.fixture
def make_pipeline() -> Iterator[Callable[..., Pipeline]]:
    stacks: list[LocalStack] = []

    def make(
        mode: str = "connected",
        *,
        budget: float = 0,
        parameters: dict[str, str] | None = None,
        emulator: EmulatorConfig | None = None,
        workers: int | None = None,
    ) -> Pipeline:
        stack = LocalStack(
            StackOptions(mode=mode, monthly_credit_budget=budget, parameters=parameters or {}, emulator=emulator)
        )
        stacks.append(stack)
        stack.start()
        return Pipeline(stack, workers)

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline()
