"""The one metrics path: the logic records numbers (Claid latency and statuses, retries, rejections, credits)
with `measure()`, without touching a metrics library; the handler collects them per invocation (`collecting()`)
and `emit()`s them as Powertools metrics (CloudWatch EMF on stdout: no API call), from one thread.

Work done side by side in worker threads (a selection's edits) runs each in its own copy of the context, with
a fresh `Measures` of its own (`side_by_side`), so nothing shared is written from two threads at once."""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

T = TypeVar("T")
Unit = Literal["Count", "Milliseconds", "Percent"]


@dataclass(frozen=True)
class Measure:
    name: str
    unit: Unit
    value: float
    # One dimension at most (e.g. ("Status", "429")): a bounded set of values, never a key or an id.
    dimension: tuple[str, str] | None = None


@dataclass
class Measures:
    items: list[Measure] = field(default_factory=list)

    def named(self, name: str) -> list[Measure]:
        return [m for m in self.items if m.name == name]

    def total(self, name: str, dimension: tuple[str, str] | None = None) -> float:
        return sum(m.value for m in self.named(name) if dimension is None or m.dimension == dimension)


_current: contextvars.ContextVar[Measures | None] = contextvars.ContextVar("backdrop_measures", default=None)


@contextmanager
def collecting() -> Iterator[Measures]:
    """Collects what the code in this block (in this context) records."""
    measures = Measures()
    token = _current.set(measures)
    try:
        yield measures
    finally:
        _current.reset(token)


def measure(name: str, value: float = 1.0, unit: Unit = "Count", dimension: tuple[str, str] | None = None) -> None:
    """Adds a measure to the record being handled; outside `collecting()` (tools, tests) it is dropped."""
    measures = _current.get()
    if measures is not None:
        measures.items.append(Measure(name, unit, float(value), dimension))


def side_by_side(workers: Executor, calls: list[Callable[[], T]]) -> list[T]:
    """Runs the calls in worker threads, each in a copy of this context (log keys) collecting its own measures;
    their measures join this context's on this thread once all are done, so nothing shared is written from two
    threads. The first call that raised raises here, after every call has finished."""

    def one(call: Callable[[], T]) -> tuple[T | BaseException, Measures]:
        with collecting() as measures:
            try:
                return call(), measures
            except Exception as exc:  # raised again below, on the caller's thread
                return exc, measures

    futures = [workers.submit(contextvars.copy_context().run, one, call) for call in calls]
    done = [future.result() for future in futures]
    here = _current.get()
    for _, measures in done:
        if here is not None:
            here.items.extend(measures.items)
    for value, _ in done:
        if isinstance(value, BaseException):
            raise value
    return [value for value, _ in done]  # type: ignore[misc]


UNITS: dict[Unit, MetricUnit] = {
    "Count": MetricUnit.Count,
    "Milliseconds": MetricUnit.Milliseconds,
    "Percent": MetricUnit.Percent,
}


def emit(metrics: Metrics, measures: Measures) -> None:
    """Plain measures join the invocation's metric set. Measures with a dimension (Status, Reason) go out as one
    EMF document per dimension value, since a metric set shares one set of dimensions; EphemeralMetrics (not
    single_metric, which ignores POWERTOOLS_METRICS_DISABLED) keeps them apart from the shared set.
    Call from one thread only.

    With metrics disabled (POWERTOOLS_METRICS_DISABLED, as the local stack runs) nothing is added: Powertools then
    never clears the shared metric set, and at 100 values of one metric it prints the set whatever the setting,
    which put an EMF document on a kit command's stdout."""
    if is_metrics_disabled():
        return
    grouped: dict[tuple[str, str], dict[tuple[str, Unit], float]] = defaultdict(lambda: defaultdict(float))
    for m in measures.items:
        if m.dimension is None:
            metrics.add_metric(name=m.name, unit=UNITS[m.unit], value=m.value)
        else:
            grouped[m.dimension][(m.name, m.unit)] += m.value
    for (dimension, value), totals in grouped.items():
        document = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
        for name, dim_value in metrics.default_dimensions.items():
            document.add_dimension(name=name, value=dim_value)
        document.add_dimension(name=dimension, value=value)
        for (name, unit), total in totals.items():
            document.add_metric(name=name, unit=UNITS[unit], value=total)
        document.flush_metrics()
