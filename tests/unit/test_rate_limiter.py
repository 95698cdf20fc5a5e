"""The shared start schedule: the spacing arithmetic alone, then the DynamoDB counter with a fake client."""

from __future__ import annotations

import math
from typing import Any

import pytest
from backdrop.claid.limiter import MINUTE_WINDOW, SECOND_WINDOW, ClaidRateLimiter, slot_spacing
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

LIMITS = [(4, SECOND_WINDOW), (120, MINUTE_WINDOW)]


def most_in_any_closed_window(starts: list[float], window: float) -> int:
    return max(sum(1 for s in starts if first <= s <= first + window + 1e-9) for first in starts)


@given(
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=2, max_value=600),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_evenly_spaced_slots_keep_every_sliding_window(per_second, per_minute, offset):
    limits = [(per_second, SECOND_WINDOW), (per_minute, MINUTE_WINDOW)]
    spacing = slot_spacing(limits)
    first = math.ceil(offset / spacing)
    starts = [(first + n) * spacing for n in range(min(per_minute * 2, 400))]
    for limit, window in limits:
        assert most_in_any_closed_window(starts, window) <= limit


def test_the_default_limits_give_nearly_claids_rate():
    spacing = slot_spacing(LIMITS)
    assert 60 / spacing == pytest.approx(118, abs=0.1)  # 120/minute minus the margin for transit jitter
    assert slot_spacing([]) == 0.0


class FakeTable:
    """Enough of DynamoDB's UpdateItem (ADD under a BETWEEN condition, SET under a less-than condition) and
    GetItem for one counter, with an optional other instance moving it in between."""

    def __init__(self, interference: list[int] | None = None) -> None:
        self.next_slot: int | None = None
        self.interference = interference or []  # values another instance writes before our next update
        self.writes = 0

    def _interfere(self) -> None:
        if self.interference:
            self.next_slot = self.interference.pop(0)

    def update_item(self, UpdateExpression: str, ExpressionAttributeValues: dict[str, Any], **_: Any) -> Any:
        self._interfere()
        values = {k: int(v["N"]) for k, v in ExpressionAttributeValues.items()}
        self.writes += 1
        if UpdateExpression.startswith("ADD"):
            if self.next_slot is None or not values[":now"] <= self.next_slot <= values[":latest"]:
                raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem")
            old = self.next_slot
            self.next_slot += 1
            return {"Attributes": {"next_slot": {"N": str(old)}}}
        if self.next_slot is not None and not self.next_slot < values[":now"]:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem")
        self.next_slot = values[":after"]
        return {}

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": {"next_slot": {"N": str(self.next_slot)}}} if self.next_slot is not None else {}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(table: FakeTable, clock: Clock) -> ClaidRateLimiter:
    return ClaidRateLimiter(table, "app", clock=clock, sleep=clock.sleep)


def test_a_queue_of_callers_takes_consecutive_slots_with_one_write_each():
    table, clock = FakeTable(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    starts = [rl.reserve(latest=clock.now + 600).at for _ in range(20)]
    spacing = rl.spacing
    assert starts == [pytest.approx(starts[0] + n * spacing) for n in range(20)]
    assert starts[0] == pytest.approx(math.ceil(clock.now / spacing) * spacing)
    # The first start sets the schedule going (a failed ADD, a SET); every later one is one ADD.
    assert table.writes == 2 + 19 and rl.lost_rounds == 0


def test_after_a_quiet_spell_the_schedule_restarts_at_now_not_in_the_past():
    table, clock = FakeTable(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    rl.reserve(latest=clock.now + 60)
    clock.now += 3600
    slot = rl.reserve(latest=clock.now + 60)
    assert slot.at is not None and clock.now <= slot.at < clock.now + rl.spacing


def test_a_start_later_than_the_caller_can_use_is_not_taken():
    table, clock = FakeTable(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    for _ in range(10):
        rl.reserve(latest=clock.now + 600)
    queued = table.next_slot
    slot = rl.reserve(latest=clock.now + 2 * rl.spacing)
    assert slot.at is None and slot.earliest == pytest.approx(queued * rl.spacing)
    assert table.next_slot == queued  # nothing was taken


def test_another_instance_restarting_the_schedule_first_costs_one_more_round():
    clock = Clock(1_000_000.0)
    now_slot = math.ceil(clock.now / slot_spacing(LIMITS))
    # Between our failed ADD and our SET, another instance restarts the schedule at the same slot.
    table = FakeTable(interference=[now_slot - 5, now_slot + 1])
    rl = limiter(table, clock)
    slot = rl.reserve(latest=clock.now + 60)
    assert slot.at == pytest.approx((now_slot + 1) * rl.spacing)  # the next slot, not theirs
    assert rl.lost_rounds == 1


def test_wait_for_start_sleeps_until_the_slot():
    table, clock = FakeTable(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    for _ in range(3):
        rl.wait_for_start(latest=clock.now + 600)
    assert clock.slept and all(s <= rl.spacing + 1e-9 for s in clock.slept)
