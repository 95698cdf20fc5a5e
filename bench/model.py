"""A sizing model of the design, as a discrete-event simulation: how long a burst of uploads takes and what the
processor's invocations add up to, for any size of burst, any limits and any processor shape.

What it models (one run is seeded, so the same inputs give the same answer):

- the jobs queue: every upload visible at time 0 (a burst); a message handed back becomes visible again later;
- the processor's event source: at most `instances` invocations at once, each taking up to `batch_size`
  messages and handling `side_by_side` of them at once; an invocation ends when its last record does (so a batch
  lasts as long as its slowest record: head-of-line blocking). Batch size 1 with more instances is the other
  shape: each record's time is its own wait for a slot plus its own call;
- the shared limiter (layers/backdrop/backdrop/claid/limiter.py, decisions 37): evenly spaced start slots,
  taken in the order records ask; a record whose slot is later than its invocation can use (the call budget must
  fit in what is left of the timeout) is handed back and comes back when that slot is near;
- Claid's latency: kit/backdrop_kit/emulator/latency.py's log-normal model, one draw per upload (the same upload
  keeps its draw whatever the shape, so shapes compare on the same latencies), or measured latencies given;
- the recorder: a fixed time per event on `recorders` instances (0: as many as needed, as Lambda's asynchronous
  invocations scale; the local runner has one).

What it leaves out: 429s (the schedule keeps under Claid's windows), failures, Lambda's own start-up and polling
delays beyond `invoke_seconds`.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from backdrop.claid.limiter import Grid, Schedule, plan
from backdrop_kit.emulator.latency import LatencyModel
from backdrop_kit.template import Template, load_template


@dataclass(frozen=True)
class Design:
    """The processor's shape and the limits, as the template deploys them (or as a what-if changes them)."""

    batch_size: int = 1
    instances: int = 50  # the event source's MaximumConcurrency
    side_by_side: int = 1  # records of one invocation handled at once (PARALLEL_RECORDS; 1 when not set)
    per_second: int = 4  # ClaidRequestsPerSecond (0: not limited)
    per_minute: int = 120  # ClaidRequestsPerMinute (0: not limited)
    start_window: float = 45.0  # seconds after an invocation starts in which a call may still start

    @property
    def grid(self) -> Grid | None:
        """The limiter's start slots (its windows are kept a little wider than Claid's); None: not limited."""
        return Grid.for_limits(self.per_second, self.per_minute)

    def scaled_limits(self, factor: int) -> Design:
        return replace(self, per_second=self.per_second * factor, per_minute=self.per_minute * factor)

    @classmethod
    def from_template(cls, parameters: dict[str, str] | None = None, template: Template | None = None) -> Design:
        """Read from template.yaml: the processor's SQS event (BatchSize, ScalingConfig.MaximumConcurrency), its
        PARALLEL_RECORDS, its Timeout less the Claid call budget, and the Claid limits."""
        template = template or load_template()
        values = {**template.parameter_defaults(), **(parameters or {})}

        def resolved(value: Any) -> Any:
            return template.resolve(value, parameters=values, physical={}, attributes={})

        props = template.raw["Resources"]["ProcessorFunction"]["Properties"]
        (event,) = [e["Properties"] for e in props["Events"].values() if e["Type"] == "SQS"]
        batch_size = int(resolved(event.get("BatchSize", 10)))
        scaling = event.get("ScalingConfig", {})
        timeout = float(resolved(props["Timeout"]))
        side_by_side = int(resolved(props["Environment"]["Variables"].get("PARALLEL_RECORDS", "1")))
        return cls(
            batch_size=batch_size,
            instances=int(resolved(scaling["MaximumConcurrency"])) if "MaximumConcurrency" in scaling else 1000,
            side_by_side=min(batch_size, side_by_side),
            per_second=int(values["ClaidRequestsPerSecond"]),
            per_minute=int(values["ClaidRequestsPerMinute"]),
            start_window=timeout - float(values["ClaidCallBudgetSeconds"]),
        )


@dataclass(frozen=True)
class Timing:
    """Time the stack itself spends, apart from Claid (calibrated from a measured burst, see `calibrate`)."""

    before_call: float = 0.0  # a record's own work before it asks for a slot (sniff, ledger, idempotency)
    after_call: float = 0.0  # a record's work after Claid answers (the generation event)
    invoke_seconds: float = 0.0  # from a free instance to its next invocation's first record
    recorder_seconds: float = 0.0  # one event through the recorder
    recorders: int = 0  # recorder instances (0: as many as needed)


@dataclass(frozen=True)
class Invocation:
    started: float
    seconds: float
    records: int


@dataclass
class Outcome:
    calls: list[tuple[float, float]]  # (start, answer) of each Claid call, in start order
    record_times: list[float]  # each terminal record, sorted
    invocations: list[Invocation]
    hand_backs: int

    @property
    def calls_makespan(self) -> float:
        return max((end for _, end in self.calls), default=0.0)

    @property
    def records_makespan(self) -> float:
        return self.record_times[-1] if self.record_times else 0.0

    @property
    def processor_seconds(self) -> float:
        return sum(i.seconds for i in self.invocations)

    def full_batch_median(self, batch_size: int) -> float:
        full = [i.seconds for i in self.invocations if i.records >= batch_size]
        return statistics.median(full) if full else float("nan")

    def mean_in_flight(self) -> float:
        """Calls open on average between the first start and the last answer (Little's law)."""
        if not self.calls:
            return 0.0
        span = self.calls_makespan - min(start for start, _ in self.calls)
        return sum(end - start for start, end in self.calls) / span if span > 0 else float(len(self.calls))


def draw_latencies(uploads: int, median: float = 10.0, sigma: float = 0.25, seed: int = 0) -> list[float]:
    """One Claid latency per upload (one image each), from the emulator's model."""
    model = LatencyModel(median=median, sigma=sigma, seed=seed)
    return [model.draw() for _ in range(uploads)]


@dataclass
class _Batch:
    instance: int
    started: float
    pending: list[int]  # uploads not yet started in this invocation
    records: int
    running: int = 0


def simulate(design: Design, timing: Timing, latencies: Sequence[float]) -> Outcome:
    """Upload i takes latencies[i] at Claid; every upload is queued at time 0."""
    grid = design.grid
    queue: list[tuple[float, int]] = [(0.0, i) for i in range(len(latencies))]  # (visible at, upload)
    heapq.heapify(queue)
    events: list[tuple[float, int, str, Any]] = []  # (at, seq, kind, payload): a tuple compares in C
    seq = 0
    schedule: Schedule | None = None  # the shared schedule, as the limiter's DynamoDB item holds it
    idle: list[int] = []
    calls: list[tuple[float, float]] = []
    answers: list[float] = []
    invocations: list[Invocation] = []
    hand_backs = 0

    def push(at: float, kind: str, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, payload))

    def start_record(now: float, batch: _Batch) -> None:
        batch.running += 1
        push(now + timing.before_call, "ready", (batch, batch.pending.pop(0)))

    for instance in range(design.instances):
        push(0.0, "poll", instance)
    while events:
        now, _, kind, payload = heapq.heappop(events)
        if kind == "poll":
            instance = payload
            if not queue:
                idle.append(instance)
                continue
            if queue[0][0] > now:
                push(queue[0][0], "poll", instance)
                continue
            taken: list[int] = []
            while queue and queue[0][0] <= now and len(taken) < design.batch_size:
                taken.append(heapq.heappop(queue)[1])
            batch = _Batch(instance, now + timing.invoke_seconds, taken, len(taken))
            for _ in range(min(design.side_by_side, len(taken))):
                start_record(batch.started, batch)
        elif kind == "ready":
            batch, upload = payload
            latest = batch.started + design.start_window
            step = plan(grid, schedule, now, latest) if grid else None
            at = step.at(grid) if step and grid else now
            if step and step.kind == "refuse":
                # Not taken: the job goes back to the queue until its slot is within reach.
                hand_backs += 1
                heapq.heappush(queue, (max(now + 1.0, at - design.start_window), upload))
                for waiting in idle:
                    push(queue[0][0], "poll", waiting)
                idle.clear()
                push(now, "done", batch)
                continue
            if step:
                schedule = step.after()
            end = at + latencies[upload]
            calls.append((at, end))
            answers.append(end + timing.after_call)
            push(end + timing.after_call, "done", batch)
        else:  # done: one record of `batch` finished
            batch = payload
            batch.running -= 1
            if batch.pending:
                start_record(now, batch)
            elif batch.running == 0:
                invocations.append(Invocation(batch.started, now - batch.started, batch.records))
                push(now, "poll", batch.instance)
    calls.sort()
    return Outcome(calls, _recorded(sorted(answers), timing), invocations, hand_backs)


def _recorded(arrivals: list[float], timing: Timing) -> list[float]:
    """Each generation event through the recorder: first come, first served on `recorders` instances."""
    if not timing.recorders:
        return [t + timing.recorder_seconds for t in arrivals]
    free = [0.0] * timing.recorders
    done = []
    for t in arrivals:
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + timing.recorder_seconds)
        done.append(start + timing.recorder_seconds)
    return sorted(done)


def schedule_bound(design: Design, latencies: Sequence[float]) -> float:
    """The makespan with processors that never hold the schedule up: upload i starts at the i-th slot."""
    grid = design.grid
    return max(((grid.at(i) if grid else 0.0) + d for i, d in enumerate(latencies)), default=0.0)


# --- calibration against a measured burst ----------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What a burst measured on the local stack (bench.burst.raw, or the JSON bench.burst.dump wrote)."""

    design: Design
    latencies: list[float]  # the charged calls' latencies, in start order
    processor_runs: list[Invocation]
    recorder_runs: list[Invocation]
    calls_makespan: float
    records_makespan: float

    @classmethod
    def from_raw(cls, raw: dict[str, Any], template: Template | None = None) -> Measured:
        charged = sorted((c for c in raw["calls"] if c["credits"]), key=lambda c: c["started"])

        def runs(function_id: str) -> list[Invocation]:
            return [
                Invocation(i["started"], i["seconds"], i["records"])
                for i in raw["invocations"]
                if i["function_id"] == function_id
            ]

        return cls(
            design=Design.from_template(raw["parameters"], template),
            latencies=[c["latency"] for c in charged],
            processor_runs=runs("ProcessorFunction"),
            recorder_runs=runs("RecorderFunction"),
            calls_makespan=raw["summary"]["calls_makespan"],
            records_makespan=raw["summary"]["records_makespan"],
        )

    @property
    def full_batch_median(self) -> float:
        full = [i.seconds for i in self.processor_runs if i.records >= self.design.batch_size]
        return statistics.median(full) if full else float("nan")


def _peak_overlap(runs: Sequence[Invocation]) -> int:
    spans = [(r.started, r.started + r.seconds) for r in runs]
    return max((sum(1 for s, e in spans if s <= start < e) for start, _ in spans), default=0)


def calibrate(measured: Measured) -> Timing:
    """The recorder's time and instances as measured; the processor's own time per record (`before_call`) fitted
    so the modelled median full-batch invocation matches the measured one. The makespans are then predictions.

    Where the schedule holds the invocations (their records wait for slots), the own time changes them little and
    the fit is loose: it then stands for whatever keeps the processors from asking sooner."""
    recorder = Timing(
        recorder_seconds=statistics.median(r.seconds for r in measured.recorder_runs) if measured.recorder_runs else 0,
        recorders=_peak_overlap(measured.recorder_runs),
    )
    target = measured.full_batch_median
    if math.isnan(target):
        return recorder
    low, high = 0.0, target
    for _ in range(30):  # bisection: a longer own time lengthens every invocation
        middle = (low + high) / 2
        modelled = simulate(measured.design, replace(recorder, before_call=middle), measured.latencies)
        if modelled.full_batch_median(measured.design.batch_size) < target:
            low = middle
        else:
            high = middle
    return replace(recorder, before_call=(low + high) / 2)


# --- what-ifs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    design: Design


# The processor's shape before decisions 45: a batch of 10 records side by side, 5 instances.
BATCHED = {"batch_size": 10, "side_by_side": 10, "instances": 5}


def shapes(design: Design) -> list[Shape]:
    """The processor shapes to compare, holding the same number of records at most: the batch of 10 side by side
    it had (decisions 45), and batch size 1 on as many instances as the batch had places (the template's now)."""
    batched = replace(design, **BATCHED)
    places = batched.instances * batched.side_by_side
    return [
        Shape(f"batch of {batched.batch_size}, side by side, {batched.instances} instances", batched),
        Shape(f"batch size 1, {places} instances", replace(design, batch_size=1, side_by_side=1, instances=places)),
    ]


INSTANCE_LADDER = (2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 750, 1000)


def instances_needed(design: Design, timing: Timing, latencies: Sequence[float], within: float = 1.02) -> int | None:
    """The fewest processor instances (from INSTANCE_LADDER) whose last answer comes within `within` of the
    schedule's own bound: more would not finish sooner. None: not even the most. A binary search on the ladder
    (more instances never end later)."""
    bound = schedule_bound(design, latencies)

    def enough(instances: int) -> bool:
        return simulate(replace(design, instances=instances), timing, latencies).calls_makespan <= within * bound

    low, high = 0, len(INSTANCE_LADDER)  # the answer's index is in [low, high]; high: none is enough
    while low < high:
        middle = (low + high) // 2
        if enough(INSTANCE_LADDER[middle]):
            high = middle
        else:
            low = middle + 1
    return INSTANCE_LADDER[low] if low < len(INSTANCE_LADDER) else None
