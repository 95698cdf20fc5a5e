"""Claid's latency and rate limit, end to end: calls overlap, the shared schedule keeps the stack under the limit,
and Claid's bill equals the ledger."""

from __future__ import annotations

import json

from backdrop.claid.limiter import SECOND_WINDOW
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
    # ... and the starts the instances gave each other never put more than 3 in any second.
    item = p.stack.client("dynamodb").get_item(
        TableName=p.stack.app_table, Key={"pk": {"S": "RATELIMIT#claid"}, "sk": {"S": "STARTS"}}, ConsistentRead=True
    )["Item"]
    starts = sorted(float(v["N"]) for v in item["starts"]["L"])
    assert len(starts) >= 12
    for first in starts:
        assert sum(1 for s in starts if first <= s < first + SECOND_WINDOW - 1e-3) <= 3
    assert all(json.loads(j["detail"])["claid"]["attempts"] >= 1 for j in jobs.values())
