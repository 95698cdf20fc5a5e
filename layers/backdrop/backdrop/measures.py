"""Numbers one record's handling produces (Claid latency and statuses, retries, rejections, credits), collected
without any metrics library so the pure logic stays pure; the handler turns them into metrics in one thread.

A batch's records run in worker threads, each in its own copy of the invocation's context: `collecting()` puts
a fresh `Measures` into that context, so what a thread records is that record's alone, and nothing shared is
written from two threads at once."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

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


def record(name: str, value: float = 1.0, unit: Unit = "Count", dimension: tuple[str, str] | None = None) -> None:
    """Adds a measure to the record being handled; outside `collecting()` (tools, tests) it is dropped."""
    measures = _current.get()
    if measures is not None:
        measures.items.append(Measure(name, unit, float(value), dimension))
