"""Lower bounds on a burst's makespan under Claid's rate limits, against which a measured run is judged."""

from __future__ import annotations

from collections.abc import Sequence

# Claid's own windows, exactly (the limiter keeps slightly wider ones on purpose, so it pays for its margin).
CLAID_WINDOWS = (1.0, 60.0)


def claid_limits(per_second: int, per_minute: int) -> list[tuple[int, float]]:
    limits = []
    if per_second:
        limits.append((per_second, CLAID_WINDOWS[0]))
    if per_minute:
        limits.append((per_minute, CLAID_WINDOWS[1]))
    return limits


def earliest_starts(count: int, per_second: int, per_minute: int) -> list[float]:
    """The earliest start times (seconds from 0) of `count` calls that keep both of Claid's windows (at most `limit`
    starts in any `window` seconds): what a perfect scheduler with every job queued at time 0 would do. Each start
    is the latest of the one before it and, per window, the start `limit` places back plus the window (that one
    has just left it)."""
    limits = claid_limits(per_second, per_minute)
    starts: list[float] = []
    for _ in range(count):
        t = starts[-1] if starts else 0.0
        for limit, window in limits:
            if len(starts) >= limit:
                t = max(t, starts[-limit] + window)
        starts.append(t)
    return starts


def rate_bound(count: int, per_second: int, per_minute: int, median_latency: float) -> float:
    """Time to start `count` calls under both windows, plus the median latency (the brief's bound)."""
    return earliest_starts(count, per_second, per_minute)[-1] + median_latency if count else 0.0


def draws_bound(latencies: Sequence[float], per_second: int, per_minute: int) -> float:
    """The best makespan any scheduler could reach with these very latencies at the rate limit.

    The start slots are fixed by the limits; pairing the longest calls with the earliest slots minimises the
    latest finish (exchange argument: swapping a longer call into a later slot can only end later)."""
    starts = earliest_starts(len(latencies), per_second, per_minute)
    longest_first = sorted(latencies, reverse=True)
    return max((s + d for s, d in zip(starts, longest_first, strict=True)), default=0.0)
