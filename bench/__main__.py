"""Measures, in one run on the local stack, what the design promises about cost per upload:

1. The processor never reads an image's bytes: its peak Python memory while checking a 20 MB upload,
   as a ratio to a 50 KB one (about 1.0 means the size does not matter).
2. Connected storage keeps image bytes out of the functions: the recorder's time per job in temporary-bucket
   mode (it downloads and copies every variant), as a ratio to connected-storage mode.
Writes docs/bench.md and prints the same table.
"""

from __future__ import annotations

import io
import json
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from backdrop.uploads import Upload
from backdrop_kit.runner import Runner, load_function
from backdrop_kit.stack import LocalStack, StackOptions
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
JOBS = 6


def _png(size_bytes: int) -> bytes:
    """A real PNG padded with an ancillary chunk to the wanted size (still a valid image)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buf, format="PNG")
    data = buf.getvalue()
    pad = max(0, size_bytes - len(data) - 12)
    import zlib

    chunk_type = b"tEXt"
    payload = b"pad\x00" + b"x" * max(0, pad - 4)
    chunk = len(payload).to_bytes(4, "big") + chunk_type + payload + zlib.crc32(chunk_type + payload).to_bytes(4, "big")
    return data[:33] + chunk + data[33:]


def processor_peak_memory(stack: LocalStack, body: bytes, key: str) -> int:
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=body)
    fn = load_function(stack, "ProcessorFunction")
    processor = fn.module.processor
    upload = Upload(stack.uploads_bucket, key)
    processor.plan(upload)  # warm clients and caches
    tracemalloc.start()
    tracemalloc.reset_peak()
    processor.plan(upload)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def recorder_seconds_per_job(mode: str) -> float:
    with LocalStack(StackOptions(mode=mode)) as stack:
        runner = Runner(stack)
        s3 = stack.client("s3")
        for i in range(JOBS):
            s3.put_object(
                Bucket=stack.uploads_bucket,
                Key=f"incoming/bench-{i}.png",
                Body=(ROOT / "kit/backdrop_kit/samples/espresso-cup.png").read_bytes(),
            )
        runner.drain(timeout=300)
        events = [e for e in stack.bus_events() if e["detail-type"] == "Generation Succeeded"]
        recorder = load_function(stack, "RecorderFunction")
        from backdrop.events import GenerationDetail

        # Replayed under a fresh job id each, so every one takes the full path: keep images (temporary mode),
        # one DynamoDB transaction, SNS, the "Generation Recorded" event.
        timings = []
        for n, event in enumerate(events):
            detail = GenerationDetail.model_validate(event["detail"]).model_copy(update={"job_id": f"bench-{n}"})
            started = time.perf_counter()
            recorder.module.recorder.record(detail)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings) if timings else float("nan")


def main() -> int:
    with LocalStack() as stack:
        small = processor_peak_memory(stack, _png(50_000), "incoming/small.png")
        large = processor_peak_memory(stack, _png(20_000_000), "incoming/large.png")
    temporary = recorder_seconds_per_job("temporary")
    connected = recorder_seconds_per_job("connected")
    rows = [
        (
            "processor peak memory, 20 MB upload / 50 KB upload",
            f"{large / small:.2f}",
            f"{large / 1024:.0f} KiB / {small / 1024:.0f} KiB",
        ),
        (
            "recorder time per job (median, full record path), temporary bucket / connected storage",
            f"{temporary / connected:.1f}",
            f"{temporary * 1000:.1f} ms / {connected * 1000:.1f} ms",
        ),
    ]
    table = ["| measure | ratio | raw |", "|---|---|---|", *[f"| {a} | {b} | {c} |" for a, b, c in rows]]
    report = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Measured by `make bench` on {platform.machine()}, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}. Ratios come from one run; raw figures are for context only.",
            "",
            *table,
            "",
        ]
    )
    (ROOT / "docs" / "bench.md").write_text(report)
    print(report)
    print(
        json.dumps({"processor_memory_ratio": large / small, "recorder_time_ratio": temporary / connected}),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
