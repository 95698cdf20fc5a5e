"""Claid's latency and rate limit, end to end: calls overlap, the shared schedule keeps the stack under the limit,
and Claid's bill equals the ledger."""

from __future__ import annotations

import json

from backdrop_kit.emulator import EmulatorConfig

from .conftest import Pipeline


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_slow_calls_overlap_under_a_shared_rate_limit(make_pipeline):
    limits = {"ClaidRequestsPerSecond": "3", "ClaidRequestsPerMinute": "120"}
    p: Pipeline = make_pipeline(parameters=limits, emulator=EmulatorConfig(latency=1.5, rate_per_second=3))
    for i in range(12):
        p.upload(f"incoming/cup-{i:02d}.png", metadata={"backdrop-number-of-images": "1"})
    p.drain()
    jobs = p.jobs()
    assert [j["status"] for j in jobs.values()] == ["succeeded"] * 12
    charged = [c for c in p.scene_calls() if c.credits_charged]
    assert len(charged) == 12 and len({c.image_url for c in charged}) == 12  # one charge per upload
    assert sum(j["credits"] for j in jobs.values()) == p.stack.emulator.stats()["credits_charged"] == 24
    # Several calls were waiting on Claid at once ...
    assert most_at_once([(c.started, c.finished) for c in charged]) >= 3
    # ... and Claid, counting arrivals in its own 1-second windows, never saw more than 3 in one: no 429 either.
    arrivals = sorted(c.started for c in p.scene_calls())
    assert p.scene_calls(429) == []
    for first in arrivals:
        assert sum(1 for s in arrivals if first <= s < first + 1.0) <= 3
    assert all(json.loads(j["detail"])["claid"]["attempts"] >= 1 for j in jobs.values())
