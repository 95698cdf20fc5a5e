"""The report's sizing sections, from bench/model.py: the model beside the measured burst, a 100,000-photo
backfill at Claid's default limits and at 10x them (makespan, AWS cost, the template parameters to change), and
the processor shapes compared on the same drawn latencies."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench import bounds, cost, model
from bench.markdown import table

BACKFILL = 100_000
FACTORS = (1, 10)


@dataclass(frozen=True)
class Costing:
    """What the model cannot simulate, from the measured burst: every AWS line but Lambda's, per image, and
    the functions' memory."""

    other_usd_per_image: float
    processor_memory_mb: int = 512
    recorder_memory_mb: int = 512

    def aws_usd(self, outcome: model.Outcome, timing: model.Timing, images: int) -> float:
        processor = cost.lambda_usd(outcome.processor_seconds, len(outcome.invocations), self.processor_memory_mb)
        recorder = cost.lambda_usd(images * timing.recorder_seconds, images, self.recorder_memory_mb)
        return processor + recorder + images * self.other_usd_per_image


def beside_measurement(measured: model.Measured, timing: model.Timing) -> list[str]:
    predicted = model.simulate(measured.design, timing, measured.latencies)
    d = measured.design
    rows = [
        ("last Claid answer", f"{measured.calls_makespan:.1f} s", f"{predicted.calls_makespan:.1f} s"),
        ("last terminal record", f"{measured.records_makespan:.1f} s", f"{predicted.records_makespan:.1f} s"),
        (
            f"processor invocation, full batch ({d.batch_size} record(s)): median (fitted)",
            f"{measured.full_batch_median:.1f} s",
            f"{predicted.full_batch_median(d.batch_size):.1f} s",
        ),
        ("processor invocations", f"{len(measured.processor_runs):,}", f"{len(predicted.invocations):,}"),
    ]
    return [
        f"Calibrated from this run's burst ({len(measured.latencies):,} charged calls, their latencies replayed in "
        f"start order): the recorder's time per event ({timing.recorder_seconds * 1000:.0f} ms, median) on "
        f"{timing.recorders or 'unbounded'} instance(s) as measured; the processor's own time per record before "
        f"it asks for a slot ({timing.before_call:.2f} s) fitted so the median full batch matches. The makespans "
        "are predictions.",
        "",
        *table(("measure", "measured", "model"), rows),
    ]


def backfill(measured: model.Measured, timing: model.Timing, costing: Costing, uploads: int = BACKFILL) -> list[str]:
    """The backfill on AWS: the recorder scales with the events (Lambda's asynchronous invocations), the rest
    as calibrated on the local stack (pessimistic: moto is slower than DynamoDB and S3)."""
    aws = replace(timing, recorders=0)
    latencies = model.draw_latencies(uploads)
    base = replace(measured.design, per_second=4, per_minute=120)
    rows = []
    changes = []
    for factor in FACTORS:
        design = base.scaled_limits(factor)
        bound = bounds.draws_bound(latencies, design.per_second, design.per_minute)
        as_is = model.simulate(design, aws, latencies)
        rows.append(_backfill_row(f"{factor}x", design, as_is, bound, costing, aws, uploads))
        needed = model.instances_needed(design, aws, latencies)
        if needed is not None and needed != design.instances:
            sized = replace(design, instances=needed)
            rows.append(
                _backfill_row(f"{factor}x", sized, model.simulate(sized, aws, latencies), bound, costing, aws, uploads)
            )
        if factor != 1:
            changes = [
                f"`ClaidRequestsPerSecond={design.per_second}`",
                f"`ClaidRequestsPerMinute={design.per_minute}`",
                f"`ProcessorMaxConcurrency={needed}`" if needed else "`ProcessorMaxConcurrency` beyond 1,000",
            ]
    return [
        f"{uploads:,} uploads queued at once, one image each, Claid's latency drawn from the emulator's model (median "
        "10 s, sigma 0.25, seed 0). The recorder scales with the events as Lambda's asynchronous invocations do; the "
        "processor's own time per record is the calibrated one (moto's, so pessimistic). Best makespan: Claid's "
        "exact windows with the longest calls in the earliest slots (bench/bounds.py). AWS cost: the model's Lambda "
        "durations and requests, plus every other line of section 4 per image.",
        "",
        *table(
            ("Claid limits", "processor", "makespan", "/ best", "hand-backs", "AWS cost"),
            rows,
        ),
        "",
        "At 10x the limits the template must change: " + ", ".join(changes) + " (the fewest instances, of "
        f"{', '.join(str(n) for n in model.INSTANCE_LADDER)}, whose last answer is within 2% of the limiter's own "
        "schedule). The start window (the processor's timeout less `ClaidCallBudgetSeconds`) and the queue's "
        "visibility timeout need no change while hand-backs stay at 0.",
    ]


def _backfill_row(
    limits: str,
    design: model.Design,
    outcome: model.Outcome,
    bound: float,
    costing: Costing,
    timing: model.Timing,
    uploads: int,
) -> tuple[str, ...]:
    return (
        f"{limits} ({design.per_second}/s, {design.per_minute}/min)",
        f"batch {design.batch_size} x {design.instances} instances",
        f"{outcome.records_makespan / 3600:.2f} h",
        f"{outcome.records_makespan / bound:.2f}",
        f"{outcome.hand_backs:,}",
        f"${costing.aws_usd(outcome, timing, uploads):,.2f}",
    )


def shapes(design: model.Design, timing: model.Timing, uploads: int = 1000) -> list[str]:
    """The processor shapes on the same drawn latencies, at Claid's default limits and at 10x."""
    latencies = model.draw_latencies(uploads)
    rows = []
    for factor in FACTORS:
        scaled = design.scaled_limits(factor)
        bound = bounds.draws_bound(latencies, scaled.per_second, scaled.per_minute)
        for shape in model.shapes(scaled):
            outcome = model.simulate(shape.design, timing, latencies)
            per_record = outcome.processor_seconds / uploads
            rows.append(
                (
                    f"{factor}x",
                    shape.name,
                    f"{outcome.records_makespan:.1f} s",
                    f"{outcome.records_makespan / bound:.2f}",
                    f"{per_record:.1f} s",
                    f"{outcome.hand_backs:,}",
                )
            )
    return [
        f"The model, {uploads:,} uploads, the same drawn latencies for every shape (seed 0), the stack's own time "
        f"as calibrated on the last full run's burst, if any (own time per record {timing.before_call:.2f} s, recorder "
        f"{timing.recorder_seconds * 1000:.0f} ms on {timing.recorders or 'unbounded'} instance(s)). Both shapes "
        "hold the same number of records at most.",
        "",
        *table(
            (
                "Claid limits",
                "shape",
                "last terminal record",
                "/ best for the latencies",
                "processor seconds billed per upload",
                "hand-backs",
            ),
            rows,
        ),
    ]
