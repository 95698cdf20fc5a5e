"""The shared start schedule: the grid's arithmetic alone, its one rule (`plan`), then the DynamoDB counter with a
fake client, alone and with other instances writing in between."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from backdrop.claid.limiter import MINUTE_WINDOW, SECOND_WINDOW, ClaidRateLimiter, Grid, Schedule, plan
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.tables import create_app_table

LIMITS = {"per_second": 4, "per_minute": 120}
SPACING = SECOND_WINDOW / 3  # 4 starts in any closed 1.1 s window


def most_in_any_closed_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    return max((sum(1 for s in starts if first <= s <= first + window) for first in starts), default=0)


def keeps_both_windows(starts: list[float], per_second: int, per_minute: int) -> bool:
    return (not per_second or most_in_any_closed_window(starts, SECOND_WINDOW) <= per_second) and (
        not per_minute or most_in_any_closed_window(starts, MINUTE_WINDOW) <= per_minute
    )


limits = st.tuples(st.integers(min_value=0, max_value=12), st.integers(min_value=0, max_value=300)).filter(any)


@given(limits, st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_any_run_of_grid_slots_keeps_every_sliding_window(limit, anchor):
    grid = Grid.for_limits(*limit)
    assert grid is not None
    starts = [anchor + grid.at(k) for k in range(min(2 * max(limit) + 3, 400))]
    assert starts == sorted(starts)
    assert keeps_both_windows(starts, *limit)


@given(limits, st.floats(min_value=-5, max_value=400, allow_nan=False))
def test_the_grid_finds_the_slots_around_a_time(limit, t):
    grid = Grid.for_limits(*limit)
    assert grid is not None
    first = grid.first_at_or_after(t)
    assert grid.at(first) >= t - 1e-9 and (first == 0 or grid.at(first - 1) < t + 1e-9)
    last = grid.last_at_or_before(t)
    assert (last == -1 or grid.at(last) <= t + 1e-9) and grid.at(last + 1) > t - 1e-9


def test_at_the_default_limits_a_minutes_quota_starts_at_the_per_second_pace():
    grid = Grid.for_limits(**LIMITS)
    assert grid is not None
    assert [grid.at(k) for k in range(5)] == pytest.approx([0, SPACING, 2 * SPACING, SECOND_WINDOW, 4 * SPACING])
    assert grid.at(119) == pytest.approx(119 * SPACING)  # Claid's quota of a minute in 44 s, not 60
    assert grid.at(120) == pytest.approx(MINUTE_WINDOW)  # and the next one a minute window after the first
    assert Grid.for_limits(0, 0) is None


def test_when_the_minute_limit_never_binds_the_grid_has_no_minute_blocks():
    grid = Grid.for_limits(4, 1000)  # 4 per 1.1 s is about 218 a minute
    assert grid is not None and grid.block is None


@pytest.mark.parametrize("per_second", [0, 120, 500])
def test_without_a_second_limit_below_the_minutes_the_starts_spread_over_the_minute(per_second):
    # A block of 120 at one instant would send a caller that just missed it a minute away, past its reach.
    grid = Grid.for_limits(per_second, 120)
    assert grid is not None and grid.block is None
    assert grid.spacing == pytest.approx(MINUTE_WINDOW / 119)


class FakeTable:
    """Enough of DynamoDB's UpdateItem for the schedule's three writes (ADD under an anchor and a BETWEEN, SET of
    the counter under an anchor and a less-than, SET of a new anchor under not-exists or equality), each condition
    failure returning the item as found (ReturnValuesOnConditionCheckFailure=ALL_OLD), and GetItem. `between`
    runs before each write: another instance's turn."""

    def __init__(self) -> None:
        self.item: dict[str, int] | None = None
        self.writes = 0
        self.reads = 0
        self.between: list[Any] = []

    def _found(self) -> dict[str, Any]:
        return {k: {"N": str(v)} for k, v in self.item.items()} if self.item else {}

    def _fail(self, how: Any) -> None:
        response = {"Error": {"Code": "ConditionalCheckFailedException"}}
        if how == "ALL_OLD" and self.item:
            response["Item"] = self._found()
        raise ClientError(response, "UpdateItem")

    def update_item(
        self,
        UpdateExpression: str,
        ConditionExpression: str,
        ExpressionAttributeValues: dict[str, Any],
        ReturnValuesOnConditionCheckFailure: str | None = None,
        **_: Any,
    ) -> Any:
        while self.between:
            self.between.pop(0)()
        self.writes += 1
        v = {k: int(x["N"]) for k, x in ExpressionAttributeValues.items()}
        item, fail = self.item, ReturnValuesOnConditionCheckFailure
        if UpdateExpression.startswith("ADD"):
            if v[":now"] > v[":latest"]:  # DynamoDB refuses the request itself, before any condition
                message = "The BETWEEN operator requires upper bound to be greater than or equal to lower bound"
                raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "UpdateItem")
            if not item or item["anchor_ms"] != v[":anchor"] or not v[":now"] <= item["next_slot"] <= v[":latest"]:
                self._fail(fail)
            assert item is not None
            item["next_slot"] += 1
            return {"Attributes": {"next_slot": {"N": str(item["next_slot"] - 1)}}}
        if "anchor_ms = :new_anchor" in UpdateExpression:
            if ConditionExpression.startswith("attribute_not_exists"):
                if item:
                    self._fail(fail)
            elif not item or (item["anchor_ms"], item["next_slot"]) != (v[":anchor"], v[":next"]):
                self._fail(fail)
            self.item = {"anchor_ms": v[":new_anchor"], "next_slot": v[":one"]}
            return {}
        if not item or item["anchor_ms"] != v[":anchor"] or not item["next_slot"] < v[":now"]:
            self._fail(fail)
        assert item is not None
        item["next_slot"] = v[":after"]
        return {}

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        return {"Item": self._found()} if self.item else {}


class MotoTable:
    """The same interface on DynamoDB as moto serves it (in-process), so the writes above are checked against a real
    implementation too: its conditions, and the item a failed condition returns."""

    def __init__(self) -> None:
        self.client = boto3.client("dynamodb", region_name="us-east-1")
        create_app_table(self.client, "app")
        self.writes = 0
        self.reads = 0
        self.between: list[Any] = []

    @property
    def item(self) -> dict[str, int] | None:
        key = {"pk": {"S": "RATELIMIT#claid"}, "sk": {"S": "GRID#4/120"}}
        found = self.client.get_item(TableName="app", Key=key, ConsistentRead=True).get("Item")
        return {k: int(v["N"]) for k, v in found.items() if "N" in v} if found else None

    def update_item(self, **kwargs: Any) -> Any:
        while self.between:
            self.between.pop(0)()
        self.writes += 1
        return self.client.update_item(**kwargs)

    def get_item(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_item(**kwargs)


@pytest.fixture(params=["fake", "moto"])
def make_table(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeTable
        return
    with mock_aws():
        yield MotoTable


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(table: FakeTable, clock: Clock, **limits: int) -> ClaidRateLimiter:
    return ClaidRateLimiter(table, "app", clock=clock, sleep=clock.sleep, **(limits or LIMITS))


def test_a_batch_after_a_quiet_spell_starts_at_claids_pace_with_one_write_each(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    starts = [rl.reserve(latest=clock.now + 600).at for _ in range(121)]
    assert starts[0] == pytest.approx(clock.now, abs=1e-3)
    assert starts[119] - starts[0] == pytest.approx(119 * SPACING, abs=1e-3)  # 120 in 44 s, not in 60
    assert starts[120] - starts[0] == pytest.approx(MINUTE_WINDOW, abs=1e-3)
    # One read when the instance first looks, the write that begins the schedule, then one ADD per start.
    assert (table.reads, table.writes, rl.lost_rounds) == (1, 1 + 120, 0)


def test_after_a_quiet_spell_the_schedule_begins_again_at_now(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    for _ in range(5):
        rl.reserve(latest=clock.now + 600)
    clock.now += 3600
    writes = table.writes
    slot = rl.reserve(latest=clock.now + 60)
    assert slot.at == pytest.approx(clock.now, abs=1e-3)
    assert table.writes - writes == 2 and rl.lost_rounds == 0  # the failed ADD returned the item: no read


def test_after_a_short_pause_the_schedule_moves_on_on_the_same_grid(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    first = [rl.reserve(latest=clock.now + 600).at for _ in range(100)]  # 100 starts in the first 36.3 s
    clock.now = first[0] + 40.0
    later = [rl.reserve(latest=clock.now + 600).at for _ in range(30)]
    # The slots that passed unused are gone: the block's last ten (from 40.3 s), then the next block, a minute
    # window after the first start.
    assert keeps_both_windows(first + later, **LIMITS)
    expected = [k * SPACING for k in range(110, 120)] + [MINUTE_WINDOW]
    assert [t - first[0] for t in later[:11]] == pytest.approx(expected, abs=1e-3)


def test_a_start_later_than_the_caller_can_use_is_not_taken(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    for _ in range(120):
        rl.reserve(latest=clock.now + 600)
    queued = table.item["next_slot"] if table.item else None
    slot = rl.reserve(latest=clock.now + 10)
    assert slot.at is None and slot.earliest == pytest.approx(table.item["anchor_ms"] / 1000 + MINUTE_WINDOW)
    assert table.item["next_slot"] == queued  # nothing was taken


def test_a_caller_whose_reach_falls_between_two_blocks_is_refused_not_failed(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    first = rl.reserve(latest=clock.now + 600).at
    assert first is not None
    for _ in range(119):
        rl.reserve(latest=clock.now + 600)
    clock.now = first + 50.0  # the block's slots ended at 43.6 s; the next block begins at 60.5 s
    slot = rl.reserve(latest=clock.now + 5.0)
    assert slot.at is None and slot.earliest == pytest.approx(first + MINUTE_WINDOW, abs=1e-3)
    tight = rl.reserve(latest=clock.now + 0.1)  # less room than one spacing: no slot between now and latest
    assert tight.at is None


@mock_aws
def test_other_limits_keep_a_schedule_of_their_own():
    # A stack whose limits change must not read one counter on two grids (the item's key names the limits).
    table, clock = MotoTable(), Clock(1_000_000.0)
    four, eight = limiter(table, clock), limiter(table, clock, per_second=8, per_minute=240)
    assert four.reserve(latest=clock.now + 600).at == pytest.approx(clock.now, abs=1e-3)
    assert eight.reserve(latest=clock.now + 600).at == pytest.approx(clock.now, abs=1e-3)


def test_another_instance_beginning_the_schedule_first_costs_one_more_round(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    other = limiter(table, Clock(clock.now))
    table.between.append(lambda: other.reserve(latest=clock.now + 600))  # lands between our read and our write
    mine = limiter(table, clock)
    slot = mine.reserve(latest=clock.now + 600)
    assert slot.at == pytest.approx(clock.now + SPACING, abs=1e-3)  # the slot after theirs
    assert table.item == {"anchor_ms": round(clock.now * 1000), "next_slot": 2}
    assert mine.lost_rounds == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), limits)
def test_instances_sharing_one_schedule_never_exceed_a_window_whatever_the_timing(seed, limit):
    rng = random.Random(seed)
    table, clock = FakeTable(), Clock(1_000_000.0)
    instances = [limiter(table, clock, per_second=limit[0], per_minute=limit[1]) for _ in range(3)]
    starts = []
    for _ in range(150):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.3, 2.0, 20.0, 61.0, 400.0])
        if rng.random() < 0.3:  # another instance writes between this one's read of the clock and its write
            other = rng.choice(instances)
            table.between.append(lambda other=other: starts.append(other.reserve(latest=clock.now + 600).at))
        slot = rng.choice(instances).reserve(latest=clock.now + rng.choice([0.5, 5.0, 600.0]))
        starts.append(slot.at)
        assert slot.at is None or slot.at >= clock.now - 1e-3
    taken = [s for s in starts if s is not None]
    assert len(taken) >= 30
    assert keeps_both_windows(taken, *limit)


def test_the_model_and_the_limiter_follow_one_rule():
    """bench/model.py applies `plan` to a counter of its own: one instance sees the same starts either way."""
    table, clock = FakeTable(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    grid = Grid.for_limits(**LIMITS)
    assert grid is not None
    schedule: Schedule | None = None
    rng = random.Random(7)
    for _ in range(300):
        clock.now += rng.choice([0.0, 0.05, 1.0, 30.0, 90.0])
        latest = clock.now + rng.choice([1.0, 45.0])
        step = plan(grid, schedule, clock.now, latest)
        got = rl.reserve(latest)
        if step.kind == "refuse":
            assert got.at is None and got.earliest == pytest.approx(step.at(grid), abs=1e-6)
        else:
            schedule = step.after()
            assert got.at == pytest.approx(step.at(grid), abs=1e-6)


def test_wait_for_start_sleeps_until_the_slot(make_table):
    table, clock = make_table(), Clock(1_000_000.0)
    rl = limiter(table, clock)
    for _ in range(6):
        rl.wait_for_start(latest=clock.now + 600)
    assert clock.slept == pytest.approx([SPACING] * 5)
