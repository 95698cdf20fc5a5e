"""What an upload costs each function in image bytes and time, in connected-storage and temporary-bucket modes,
and whether the processor's memory depends on the upload's size (it should read a 64-byte sniff, never the image).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

from backdrop.events import GenerationDetail
from backdrop.uploads import Upload
from backdrop_kit.runner import Runner, load_function
from backdrop_kit.stack import LocalStack, StackOptions
from PIL import Image

from bench import traffic

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "kit/backdrop_kit/samples/espresso-cup.png"
JOBS = 6
FUNCTIONS = ("ProcessorFunction", "RecorderFunction")


def padded_png(size_bytes: int) -> bytes:
    """A real PNG padded with an ancillary chunk to the wanted size (still a valid image)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buf, format="PNG")
    data = buf.getvalue()
    pad = max(0, size_bytes - len(data) - 12)
    chunk_type = b"tEXt"
    payload = b"pad\x00" + b"x" * max(0, pad - 4)
    chunk = len(payload).to_bytes(4, "big") + chunk_type + payload + zlib.crc32(chunk_type + payload).to_bytes(4, "big")
    return data[:33] + chunk + data[33:]


def processor_peak_memory(stack: LocalStack, body: bytes, key: str) -> int:
    """Peak Python allocation while the processor checks and plans one upload of this body."""
    stack.client("s3").put_object(Bucket=stack.uploads_bucket, Key=key, Body=body)
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


def memory_by_upload_size() -> tuple[int, int]:
    """(peak for a 50 KB upload, peak for a 20 MB upload), in bytes."""
    with LocalStack(StackOptions(log_level="ERROR")) as stack:
        small = processor_peak_memory(stack, padded_png(50_000), "incoming/small.png")
        large = processor_peak_memory(stack, padded_png(20_000_000), "incoming/large.png")
    return small, large


@dataclass
class ModeRun:
    mode: str
    jobs: int
    images_per_job: int
    recorder_seconds: float  # median, full record path
    traffic: traffic.Traffic

    def per_upload(self, counter: dict[str, int], function_id: str) -> float:
        return counter.get(function_id, 0) / self.jobs


def run_mode(mode: str, jobs: int = JOBS) -> ModeRun:
    """`jobs` uploads at the stack's defaults (4 variants each) through the functions, bytes counted; then each
    generation event replayed through a warm recorder under a fresh job id, timed."""
    counted = traffic.Traffic()
    with LocalStack(StackOptions(mode=mode, log_level="ERROR")) as stack:
        traffic.watch(counted)
        try:
            runner = Runner(stack)
            traffic.count_downloads(counted, runner.function("RecorderFunction"))
            s3 = stack.client("s3")
            for i in range(jobs):
                s3.put_object(Bucket=stack.uploads_bucket, Key=f"incoming/bench-{i}.png", Body=SAMPLE.read_bytes())
            with contextlib.redirect_stdout(io.StringIO()):  # the recorder's EMF metric lines
                runner.drain(timeout=300)
        finally:
            traffic.unwatch()
        events = [e for e in stack.bus_events() if e["detail-type"] == "Generation Succeeded"]
        images = max((len(e["detail"].get("outputs", [])) for e in events), default=0)
        recorder = load_function(stack, "RecorderFunction")
        # Replayed under a fresh job id each, so every one takes the full path: keep images (temporary mode),
        # one DynamoDB transaction, SNS, the "Generation Recorded" event.
        timings = []
        for n, event in enumerate(events):
            detail = GenerationDetail.model_validate(event["detail"]).model_copy(update={"job_id": f"bench-{n}"})
            started = time.perf_counter()
            recorder.module.recorder.record(detail)
            timings.append(time.perf_counter() - started)
    return ModeRun(mode, jobs, images, statistics.median(timings) if timings else float("nan"), counted)
