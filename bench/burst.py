"""A burst of uploads through the whole local stack with Claid's latency and rate limits on, time-scaled.

Scaling by k multiplies both of Claid's limits by k (in the emulator and in the stack's ClaidRequestsPerSecond /
ClaidRequestsPerMinute) and divides the latency median by k. Calls in flight (rate x latency, Little's law) stay
the same, and the makespan divides by k whenever k's minute quota divides the burst the same way (k = 1, 2, 4 for
1,000 uploads: 8 full minutes and 40 calls, in 1/k of the time). Our own overhead is not scaled, so the scaled
run is the harder one.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backdrop.jobs import current_month
from backdrop.store.ledger import DynamoLedger
from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.emulator.server import CallRecord
from backdrop_kit.runner import Invocation, Runner, RunStats
from backdrop_kit.stack import LocalStack, StackOptions

from bench import bounds, traffic

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "kit/backdrop_kit/samples/espresso-cup.png"
TERMINAL = ("succeeded", "failed", "rejected")
OUTCOME_UNKNOWN = "claid_outcome_unknown"


@dataclass(frozen=True)
class BurstConfig:
    uploads: int = 1000
    scale: int = 2  # k
    median_latency: float = 10.0  # seconds, one image, before scaling
    per_second: int = 4  # Claid's limits, before scaling
    per_minute: int = 120
    shared_limiter: bool = True  # False: ClaidRequestsPerSecond/PerMinute = 0, only 429s pace the stack
    # ClaidUnknownOutcomeSettleSeconds: how long an unanswered call's output folder is watched (template: 600).
    # A minute here, so one lost answer cannot hold the whole bench for ten.
    settle_seconds: int | None = 60
    images_per_upload: int = 1
    mode: str = "connected"
    timeout: float = 900.0
    max_concurrency: int | None = None  # ProcessorMaxConcurrency (None: the template's default)
    # Any other template parameters, e.g. (("ProcessorBatchSize", "1"),): a processor shape on the real stack.
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def scaled_per_second(self) -> int:
        return self.per_second * self.scale

    @property
    def scaled_per_minute(self) -> int:
        return self.per_minute * self.scale

    @property
    def scaled_latency(self) -> float:
        return self.median_latency / self.scale


@dataclass
class BurstResult:
    config: BurstConfig
    upload_seconds: float  # putting the burst into the bucket, before the functions start
    drain_seconds: float
    calls: list[CallRecord]  # offsets from t0 in started/finished
    invocations: list[Invocation]  # offsets from t0 in started
    stats: RunStats
    traffic: traffic.Traffic
    records_makespan: float  # t0 -> the last terminal record written
    record_times: list[float]  # t0 -> each terminal record, sorted
    lost: int
    double_charged: int
    unsettled: int
    ledger_credits: float
    claid_credits: float
    credits_at_risk: float
    dead_lettered: dict[str, int]
    statuses: Counter[str] = field(default_factory=Counter)
    drained: bool = True  # False: the queues were still busy at the timeout
    processor_memory_mb: int = 512
    recorder_memory_mb: int = 512
    parameters: dict[str, str] = field(default_factory=dict)  # the template parameters the stack ran with

    @property
    def charged(self) -> list[CallRecord]:
        return [c for c in self.calls if c.credits_charged > 0]

    @property
    def calls_makespan(self) -> float:
        """t0 -> Claid's last answer: the part the rate limit governs."""
        return max((c.finished for c in self.charged), default=0.0)

    @property
    def unanswered(self) -> int:
        """Calls Claid made (and may have charged) whose answer never reached the processor."""
        return sum(1 for c in self.calls if not c.answered)

    @property
    def rate_limited(self) -> int:
        return sum(1 for c in self.calls if c.status == 429)

    @property
    def bound(self) -> float:
        cfg = self.config
        return bounds.rate_bound(cfg.uploads, cfg.scaled_per_second, cfg.scaled_per_minute, cfg.scaled_latency)

    @property
    def draws_bound(self) -> float:
        cfg = self.config
        return bounds.draws_bound([c.latency for c in self.charged], cfg.scaled_per_second, cfg.scaled_per_minute)


def _shifted(call: CallRecord, t0: float) -> CallRecord:
    return CallRecord(**{**call.__dict__, "started": call.started - t0, "finished": call.finished - t0, "body": None})


def _queue_depth(stack: LocalStack, logical_id: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url(logical_id), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def run(cfg: BurstConfig, progress: bool = True) -> BurstResult:
    parameters = {
        "ClaidRequestsPerSecond": str(cfg.scaled_per_second if cfg.shared_limiter else 0),
        "ClaidRequestsPerMinute": str(cfg.scaled_per_minute if cfg.shared_limiter else 0),
    }
    if cfg.settle_seconds is not None:
        parameters["ClaidUnknownOutcomeSettleSeconds"] = str(cfg.settle_seconds)
    if cfg.max_concurrency is not None:
        parameters["ProcessorMaxConcurrency"] = str(cfg.max_concurrency)
    parameters.update(cfg.overrides)
    emulator = EmulatorConfig(
        latency=cfg.scaled_latency,
        rate_per_second=cfg.scaled_per_second,
        rate_per_minute=cfg.scaled_per_minute,
    )
    counted = traffic.Traffic()
    body = SAMPLE.read_bytes()
    options = StackOptions(mode=cfg.mode, parameters=parameters, emulator=emulator, log_level="ERROR")
    with LocalStack(options) as stack:
        traffic.watch(counted)
        try:
            runner = Runner(stack, progress=_progress if progress else None)
            traffic.count_downloads(counted, runner.function("RecorderFunction"))
            s3 = stack.client("s3")
            started = time.monotonic()
            # No sub-folder under incoming/: it would name a settings profile.
            keys = [f"incoming/burst-{i:04d}.png" for i in range(cfg.uploads)]
            for key in keys:
                s3.put_object(
                    Bucket=stack.uploads_bucket,
                    Key=key,
                    Body=body,
                    Metadata={"backdrop-number-of-images": str(cfg.images_per_upload)},
                )
            upload_seconds = time.monotonic() - started
            t0, t0_wall = time.monotonic(), time.time()
            # The recorder's EMF metric lines go to stdout; they would drown the report.
            drained = True
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    runner.drain(cfg.timeout)
                except TimeoutError as exc:  # reported as lost uploads, not a crash of the whole bench
                    print(f"  [burst] {exc}", file=sys.stderr)
                    drained = False
            drain_seconds = time.monotonic() - t0
            items = stack.job_items()
            usage = DynamoLedger(stack.client("dynamodb"), stack.app_table).month_usage(current_month())["total"]
            claid_credits = float(stack.emulator.stats()["credits_charged"])
            dead = {q: _queue_depth(stack, q) for q in ("JobsDLQ", "RecorderDLQ")}
            calls = [_shifted(c, t0) for c in stack.emulator.calls]
            memory = {fid: spec.memory for fid, spec in stack.template.functions(stack.parameters).items()}
        finally:
            traffic.unwatch()
    terminal = [i for i in items if i.get("status") in TERMINAL]
    recorded_keys = {i["source_key"] for i in terminal}
    charged_per_upload = Counter(c.image_url for c in calls if c.credits_charged and c.image_url)
    unsettled = 0
    for item in terminal:
        detail = json.loads(item.get("detail") or "{}")
        problem = detail.get("problem") or {}
        if problem.get("code") == OUTCOME_UNKNOWN and not (detail.get("claid") or {}).get("reconciled"):
            unsettled += 1
    last_record = max((datetime.fromisoformat(i["recorded_at"]).timestamp() for i in terminal), default=t0_wall)
    return BurstResult(
        config=cfg,
        upload_seconds=upload_seconds,
        drain_seconds=drain_seconds,
        calls=calls,
        invocations=[Invocation(i.function_id, i.started - t0, i.seconds, i.records) for i in runner.stats.timeline],
        stats=runner.stats,
        traffic=counted,
        records_makespan=last_record - t0_wall,
        record_times=sorted(datetime.fromisoformat(i["recorded_at"]).timestamp() - t0_wall for i in terminal),
        lost=sum(1 for key in keys if key not in recorded_keys),
        double_charged=sum(1 for n in charged_per_upload.values() if n > 1),
        unsettled=unsettled,
        ledger_credits=float(usage.get("credits_used", 0)),
        claid_credits=claid_credits,
        credits_at_risk=float(usage.get("credits_at_risk", 0)),
        dead_lettered=dead,
        statuses=Counter(
            str(i["status"]) + (f" ({i['reason']})" if i.get("reason") and i["status"] != "succeeded" else "")
            for i in terminal
        ),
        drained=drained,
        processor_memory_mb=memory.get("ProcessorFunction", 512),
        recorder_memory_mb=memory.get("RecorderFunction", 512),
        parameters=parameters,
    )


def _progress(line: str) -> None:
    print(f"  [burst] {line}", file=sys.stderr, flush=True)


def in_flight(calls: list[CallRecord], step: float = 0.25) -> list[tuple[float, int]]:
    """Charged-or-answered Claid calls open at each instant (429s take no time and are left out)."""
    spans = [(c.started, c.finished) for c in calls if c.status != 429]
    end = max((f for _, f in spans), default=0.0)
    series = []
    t = 0.0
    while t <= end + step:
        series.append((t, sum(1 for s, f in spans if s <= t < f)))
        t += step
    return series


def crowded_429s(result: BurstResult) -> list[float]:
    """For each 429 under the per-second limit: how long before it the call `limit` accepted calls back arrived
    at Claid (under 1.0 s: Claid saw more than `limit` requests in one second, however they were scheduled)."""
    limit = result.config.scaled_per_second
    accepted = sorted(c.started for c in result.calls if c.status != 429)
    gaps = []
    for call in result.calls:
        if call.status != 429 or not limit:
            continue
        before = [t for t in accepted if t <= call.started]
        if len(before) >= limit:
            gaps.append(call.started - before[-limit])
    return sorted(gaps)


def raw(result: BurstResult) -> dict[str, Any]:
    """The raw timeline, as plain data (what bench.model.Measured reads)."""
    return {
        "summary": summary(result),
        "parameters": result.parameters,
        "calls": [
            {
                "started": c.started,
                "finished": c.finished,
                "status": c.status,
                "latency": c.latency,
                "answered": c.answered,
                "credits": c.credits_charged,
                "image_url": c.image_url,
            }
            for c in result.calls
        ],
        "invocations": [i.__dict__ for i in result.invocations],
        "record_times": result.record_times,
        "errors": [[*key, n] for key, n in result.traffic.errors.items()],
    }


def dump(result: BurstResult, path: Path) -> None:
    """The raw timeline (out/ is git-ignored), for whoever wants to look closer than the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw(result), indent=1))


def summary(result: BurstResult) -> dict[str, Any]:
    """The raw figures, for stderr (and whoever wants to diff two runs)."""
    return {
        "uploads": result.config.uploads,
        "scale": result.config.scale,
        "shared_limiter": result.config.shared_limiter,
        "calls_makespan": round(result.calls_makespan, 2),
        "records_makespan": round(result.records_makespan, 2),
        "bound": round(result.bound, 2),
        "draws_bound": round(result.draws_bound, 2),
        "rate_limited": result.rate_limited,
        "unanswered": result.unanswered,
        "lost": result.lost,
        "double_charged": result.double_charged,
        "unsettled": result.unsettled,
        "ledger_credits": result.ledger_credits,
        "claid_credits": result.claid_credits,
        "invocations": result.stats.invocations,
        "batch_item_failures": result.stats.batch_item_failures,
        "dead_lettered": result.dead_lettered,
        "statuses": dict(result.statuses),
    }
