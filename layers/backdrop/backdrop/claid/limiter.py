"""One schedule of Claid call starts shared by every processor instance, so the stack stays under Claid's limits and
a batch still starts as fast as they allow.

Claid counts requests per account in sliding windows (default 4 per second and 120 per minute). The schedule is a
grid of start slots laid from an anchor time: `per_second` of them in any second window, evenly spaced, in blocks
of `per_minute` that start one minute window apart (where the minute limit binds). Any `per_second + 1` consecutive
slots span more than a second window and any `per_minute + 1` more than a minute window, so every sliding window
stays under its limit whoever holds the slots, and instances only need to agree on who holds which slot. A batch of
120 after a quiet minute starts in 44 seconds (slots spaced for the minute, as before, took 60); starts are not
bunched at Claid's per-second limit, so a request that leaves its slot up to 0.4 s late still keeps Claid's
1-second window.

That agreement is one DynamoDB item (pk `RATELIMIT#claid`, sk `GRID#<per second>/<per minute>`): the anchor (epoch
milliseconds) and the next free slot. While calls are queued the counter runs ahead of the clock and each start is
one atomic ADD, which cannot lose a race; when the schedule has fallen behind the clock, one conditional SET moves it
on: to the first slot after now on the same grid, or, after a quiet spell long enough that no earlier start is
inside any window, to a new anchor at now. A start costs one write under any contention and two after a quiet spell
(a failed conditional write returns the item, so no read follows it); when the next slot is later than the caller
can use, nothing is taken and the caller hands its job back to the queue, knowing how long to wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

# Requests reach Claid a little later than they leave, and not all equally late: the windows are kept a
# little wider than Claid's so that jitter in transit cannot make two starts look closer than they were.
SECOND_WINDOW = 1.1
MINUTE_WINDOW = 60.5
# Slots one window apart must not both fall inside one closed window.
_APART = 1.000001
# Bounds the rounds of one reservation: each lost round means the schedule moved, which happens at most once per
# quiet spell before every later caller takes the atomic path.
MAX_ROUNDS = 8

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Python values as the low-level client's attribute values: {"next_slot": 3} -> {"next_slot": {"N": "3"}}."""
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def _even(limit: int, window: float) -> float:
    """The spacing that puts `limit` evenly spaced starts in a closed `window` (the last one on its edge)."""
    return window / (limit - 1) if limit > 1 else window * _APART


@dataclass(frozen=True)
class Grid:
    """The start slots of a schedule, in seconds after its anchor: slot k starts at `at(k)`. Slots are `spacing`
    apart, in blocks of `block` that start `minute` apart (None: one endless block)."""

    spacing: float
    block: int | None
    minute: float

    @classmethod
    def for_limits(cls, per_second: int, per_minute: int) -> Grid | None:
        """The fastest evenly spaced blocks under both limits (0: not limited); None when nothing is limited."""
        if not per_second and not per_minute:
            return None
        minute = MINUTE_WINDOW * _APART
        if per_minute and (not per_second or per_second >= per_minute):
            # No second limit below the minute's: evenly spaced over the minute (a block at one instant would send
            # a caller that just missed it a minute away, past any invocation's reach).
            return cls(_even(per_minute, MINUTE_WINDOW), None, minute)
        spacing = _even(per_second, SECOND_WINDOW)
        if per_minute and per_minute * spacing <= minute:  # else the spacing alone keeps every minute window
            return cls(spacing, per_minute, minute)
        return cls(spacing, None, minute)

    @property
    def quiet(self) -> float:
        """How long after its next free slot the schedule may begin again at any time: no start is in any window."""
        return self.minute if self.block else self.spacing

    def at(self, k: int) -> float:
        if not self.block:
            return k * self.spacing
        blocks, k = divmod(k, self.block)
        return blocks * self.minute + k * self.spacing

    def first_at_or_after(self, t: float) -> int:
        """The first slot that starts no earlier than t seconds after the anchor."""
        if t <= 0:
            return 0
        if not self.block:
            return math.ceil(t / self.spacing)
        blocks, t = divmod(t, self.minute)
        base = int(blocks) * self.block
        if t > (self.block - 1) * self.spacing:
            return base + self.block  # past this block's last slot: the next block's first
        return base + (math.ceil(t / self.spacing) if self.spacing else 0)

    def last_at_or_before(self, t: float) -> int:
        """The last slot that starts no later than t seconds after the anchor (-1: none)."""
        if t < 0:
            return -1
        if not self.block:
            return int(t // self.spacing)
        blocks, t = divmod(t, self.minute)
        in_block = int(t // self.spacing) + 1 if self.spacing else self.block
        return int(blocks) * self.block + min(in_block, self.block) - 1


@dataclass(frozen=True)
class StartSlot:
    at: float | None  # epoch seconds the call may start; None: not taken (too late for the caller)
    earliest: float  # the earliest start the schedule could give


@dataclass(frozen=True)
class Schedule:
    """The schedule as stored: its grid's anchor (epoch seconds, kept as whole milliseconds) and the next free slot."""

    anchor: float
    next_slot: int


@dataclass(frozen=True)
class Step:
    """What a caller does with the schedule as it stands: `take` the next slot (the counter is ahead of the clock),
    `move_on` to the first slot after now (fallen behind, but a recent start may still be in a window), `begin` a
    new grid at now (no schedule, or a quiet spell), or `refuse` (the slot is later than the caller can use)."""

    kind: Literal["take", "move_on", "begin", "refuse"]
    anchor: float
    slot: int

    def at(self, grid: Grid) -> float:
        return self.anchor + grid.at(self.slot)

    def after(self) -> Schedule:
        return Schedule(self.anchor, self.slot + 1)


def plan(grid: Grid, schedule: Schedule | None, now: float, latest: float) -> Step:
    """The one rule of the schedule, for a caller at `now` that can start no later than `latest`. The limiter
    applies it with conditional writes; the bench's model (bench/model.py) applies it to a counter of its own."""
    if schedule is None or schedule.anchor + grid.at(schedule.next_slot) <= now - grid.quiet:
        fresh = Step("begin", round(now * 1000) / 1000, 0)
        return fresh if fresh.anchor <= latest else replace(fresh, kind="refuse")
    anchor = schedule.anchor
    now_k = grid.first_at_or_after(now - anchor)
    slot = max(schedule.next_slot, now_k)
    if slot > grid.last_at_or_before(latest - anchor):
        return Step("refuse", anchor, slot)
    return Step("take" if schedule.next_slot >= now_k else "move_on", anchor, slot)


@dataclass
class ClaidRateLimiter:
    dynamodb: Any
    table_name: str
    per_second: int = 4
    per_minute: int = 120
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    name: str = "claid"
    lost_rounds: int = 0  # rounds that found the schedule moved under them (the bench counts failed writes instead)
    _key: dict[str, Any] = field(init=False)
    _seen: Schedule | None = field(init=False, default=None)  # the schedule as this instance last saw it

    def __post_init__(self) -> None:
        # The limits are part of the key: changing them on a live stack starts a new schedule instead of reading
        # one counter on two grids.
        self._key = _attributes({"pk": f"RATELIMIT#{self.name}", "sk": f"GRID#{self.per_second}/{self.per_minute}"})

    @property
    def grid(self) -> Grid | None:
        return Grid.for_limits(self.per_second, self.per_minute)

    def reserve(self, latest: float) -> StartSlot:
        """Take the next start if it is no later than `latest` (epoch seconds)."""
        grid = self.grid
        if grid is None:
            now = self.clock()
            return StartSlot(now, now)
        if self._seen is None:
            self._seen = self._read()  # once per instance: later, a failed write returns the item it found
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            found = self._seen
            if self._seen is not None:
                # Other instances have moved the counter since this one saw it, but not the anchor (it moves only
                # after a quiet spell): the ADD takes whatever the counter holds, if that is within [now, latest].
                anchor = self._seen.anchor
                now_k, latest_k = grid.first_at_or_after(now - anchor), grid.last_at_or_before(latest - anchor)
                # No slot between them (both in the gap between blocks, or too little time left): DynamoDB refuses
                # a BETWEEN whose bounds are upside down, so the rule below decides on what this instance saw.
                if now_k <= latest_k:
                    slot, found = self._take(anchor, now_k, latest_k)
                    if slot is not None:
                        self._seen = Schedule(anchor, slot + 1)
                        return StartSlot(anchor + grid.at(slot), anchor + grid.at(slot))
            step = plan(grid, found, now, latest)  # the schedule as stored (or as this instance last saw it)
            if step.kind == "refuse":
                self._seen = found
                return StartSlot(None, step.at(grid))
            if step.kind == "take":  # this instance's anchor was stale: the next round takes on the stored one
                done = False
            elif step.kind == "move_on":
                done, found = self._move_on(step)
            else:
                done, found = self._begin(step, found)
            if done:
                self._seen = step.after()
                return StartSlot(step.at(grid), step.at(grid))
            self._seen = found
            self.lost_rounds += 1
        raise RuntimeError(f"the Claid rate-limit schedule moved under {MAX_ROUNDS} reservations in a row")

    def _take(self, anchor: float, now_k: int, latest_k: int) -> tuple[int | None, Schedule | None]:
        """The stored next slot, if it is within [now_k, latest_k] on this anchor: one atomic ADD."""
        answer, found = self._update(
            "ADD next_slot :one",
            "anchor_ms = :anchor AND next_slot BETWEEN :now AND :latest",
            {":one": 1, ":anchor": _ms(anchor), ":now": now_k, ":latest": latest_k},
            ReturnValues="UPDATED_OLD",
        )
        if answer is None:
            return None, found
        return int(_DESERIALIZER.deserialize(answer["Attributes"]["next_slot"])), None

    def _move_on(self, step: Step) -> tuple[bool, Schedule | None]:
        """Fallen behind the clock: the counter past `step.slot`, the first slot after now, on the same grid."""
        answer, found = self._update(
            "SET next_slot = :after",
            "anchor_ms = :anchor AND next_slot < :now",
            {":after": step.slot + 1, ":anchor": _ms(step.anchor), ":now": step.slot},
        )
        return answer is not None, found

    def _begin(self, step: Step, found: Schedule | None) -> tuple[bool, Schedule | None]:
        """A new grid anchored at `step.anchor`, if the schedule is still as it was `found` (none, or quiet)."""
        if found is None:
            condition, values = "attribute_not_exists(next_slot)", {}
        else:
            condition = "anchor_ms = :anchor AND next_slot = :next"
            values = {":anchor": _ms(found.anchor), ":next": found.next_slot}
        answer, now_found = self._update(
            "SET anchor_ms = :new_anchor, next_slot = :one",
            condition,
            {":new_anchor": _ms(step.anchor), ":one": 1, **values},
        )
        return answer is not None, now_found

    def _update(
        self, update: str, condition: str, values: dict[str, Any], **extra: Any
    ) -> tuple[dict[str, Any] | None, Schedule | None]:
        """One conditional write: (its answer, None), or (None, the schedule as the failed condition found it)."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_attributes(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **extra,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            found: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return None, _schedule(found)
        return answer, None

    def _read(self) -> Schedule | None:
        item = self.dynamodb.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
        return _schedule(item)

    def wait_for_start(self, latest: float) -> StartSlot:
        """Reserve a start and sleep until it comes. Returns the slot (at None: nothing was reserved)."""
        slot = self.reserve(latest)
        if slot.at is not None:
            delay = slot.at - self.clock()
            if delay > 0:
                self.sleep(delay)
        return slot


def _ms(epoch_seconds: float) -> int:
    return round(epoch_seconds * 1000)


def _schedule(item: dict[str, Any] | None) -> Schedule | None:
    if not item or "next_slot" not in item or "anchor_ms" not in item:
        return None
    return Schedule(
        int(_DESERIALIZER.deserialize(item["anchor_ms"])) / 1000, int(_DESERIALIZER.deserialize(item["next_slot"]))
    )
