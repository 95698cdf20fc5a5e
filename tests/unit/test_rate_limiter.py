"""The shared start schedule: the window arithmetic alone, then the DynamoDB item with a fake client."""

from __future__ import annotations

from typing import Any

import pytest
from backdrop.claid.limiter import MINUTE_WINDOW, SECOND_WINDOW, ClaidRateLimiter, next_start
from botocore.exceptions import ClientError

LIMITS = [(4, SECOND_WINDOW), (120, MINUTE_WINDOW)]


def schedule(n: int, now: float = 0.0) -> list[float]:
    starts: list[float] = []
    for _ in range(n):
        starts.append(next_start(starts, now, LIMITS))
    return starts


def most_in_any_window(starts: list[float], window: float) -> int:
    return max(sum(1 for s in starts if first <= s < first + window) for first in starts)


def test_four_start_at_once_then_the_fifth_waits_for_the_first_to_leave_the_second():
    starts = schedule(5)
    assert starts[:4] == [0.0] * 4
    assert starts[4] == pytest.approx(SECOND_WINDOW)


def test_a_burst_keeps_both_windows_with_room_for_jitter():
    starts = schedule(300)
    assert most_in_any_window(starts, 1.0) <= 4
    assert most_in_any_window(starts, 60.0) <= 120
    # Not slower than needed: 120 starts within the first minute at 4/s, the next 120 one minute later.
    assert starts[119] < 33 and starts[120] == pytest.approx(MINUTE_WINDOW)


def test_starts_are_handed_out_in_order():
    starts = schedule(50, now=10.0)
    assert starts == sorted(starts) and starts[0] == 10.0


class FakeTable:
    """Enough of DynamoDB's GetItem / conditional PutItem for one item, with an optional lost race."""

    def __init__(self, races: int = 0) -> None:
        self.item: dict[str, Any] | None = None
        self.races = races
        self.puts = 0

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": self.item} if self.item else {}

    def put_item(self, Item: dict[str, Any], ExpressionAttributeValues: dict[str, Any], **_: Any) -> None:
        expected = int(ExpressionAttributeValues[":v"]["N"])
        current = int(self.item["version"]["N"]) if self.item else 0
        if self.races:
            self.races -= 1
            current += 1  # someone else wrote in between
        if current != expected:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
        self.puts += 1
        self.item = Item


def test_reserve_takes_starts_in_turn_and_waits_for_them():
    table = FakeTable()
    slept: list[float] = []
    limiter = ClaidRateLimiter(table, "t", per_second=2, per_minute=0, clock=lambda: 100.0, sleep=slept.append)
    first = [limiter.wait_for_start(latest=200.0).at for _ in range(3)]
    assert first == [100.0, 100.0, pytest.approx(100.0 + SECOND_WINDOW)]
    assert slept == [pytest.approx(SECOND_WINDOW)]


def test_a_start_later_than_the_caller_can_use_is_not_taken():
    table = FakeTable()
    limiter = ClaidRateLimiter(table, "t", per_second=1, per_minute=0, clock=lambda: 100.0, sleep=lambda _: None)
    assert limiter.reserve(latest=100.0).at == 100.0
    late = limiter.reserve(latest=100.5)
    assert late.at is None and late.earliest == pytest.approx(100.0 + SECOND_WINDOW)
    assert table.puts == 1


def test_a_lost_race_reads_again():
    table = FakeTable(races=2)
    limiter = ClaidRateLimiter(table, "t", clock=lambda: 5.0, sleep=lambda _: None)
    assert limiter.reserve(latest=10.0).at == 5.0 and table.puts == 1
