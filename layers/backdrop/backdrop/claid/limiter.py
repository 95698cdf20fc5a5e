"""One schedule of Claid call starts shared by every processor instance, so the stack stays under Claid's limits.

Claid counts requests per account in sliding windows (default 4 per second and 120 per minute). The schedule is a
row of evenly spaced start slots, `spacing` seconds apart, numbered from the epoch: slot n starts at n * spacing.
A spacing that puts at most `limit` slots in any `window` keeps every sliding window under its limit whoever
holds the slots, so instances only need to agree on who holds which slot. That is one counter in one DynamoDB
item (pk `RATELIMIT#claid`, `next_slot`): while calls are queued the counter runs ahead of the clock and each
start is one atomic ADD, which cannot lose a race; when the schedule has fallen behind the clock (nobody called
for a while) one conditional SET moves it to now. A start costs one write under any contention, two after a
quiet spell, and a third read only when the next slot is later than the caller can use: then nothing is taken
and the caller hands its job back to the queue, knowing how long to wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

# Requests reach Claid a little later than they leave, and not all equally late: the windows are kept a
# little wider than Claid's so that jitter in transit cannot make two starts look closer than they were.
SECOND_WINDOW = 1.1
MINUTE_WINDOW = 60.5
# Bounds the rounds of one reservation: each lost round means the schedule moved, which happens at most once per
# quiet spell before every later caller takes the atomic path.
MAX_ROUNDS = 8

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Python values as the low-level client's attribute values: {"next_slot": 3} -> {"next_slot": {"N": "3"}}."""
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def _slot(attribute: Any) -> int:
    """A stored slot number back as an int."""
    return int(_DESERIALIZER.deserialize(attribute))


@dataclass(frozen=True)
class StartSlot:
    at: float | None  # epoch seconds the call may start; None: not taken (too late for the caller)
    earliest: float  # the earliest start the schedule could give


def slot_spacing(limits: list[tuple[int, float]]) -> float:
    """The smallest spacing of evenly spaced starts that keeps at most `limit` of them in any closed `window`
    (a window of w seconds holds floor(w / spacing) + 1 such starts). 0 when nothing is limited."""
    return max((window / (limit - 1) if limit > 1 else window * 1.000001 for limit, window in limits), default=0.0)


@dataclass
class ClaidRateLimiter:
    dynamodb: Any
    table_name: str
    per_second: int = 4
    per_minute: int = 120
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    name: str = "claid"
    lost_rounds: int = 0  # reservations' rounds that found the schedule moved (measured by the bench)
    _key: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self._key = _attributes({"pk": f"RATELIMIT#{self.name}", "sk": "STARTS"})

    @property
    def limits(self) -> list[tuple[int, float]]:
        found = []
        if self.per_second:
            found.append((self.per_second, SECOND_WINDOW))
        if self.per_minute:
            found.append((self.per_minute, MINUTE_WINDOW))
        return found

    @property
    def spacing(self) -> float:
        return slot_spacing(self.limits)

    def reserve(self, latest: float) -> StartSlot:
        """Take the next start if it is no later than `latest` (epoch seconds)."""
        spacing = self.spacing
        if not spacing:
            now = self.clock()
            return StartSlot(now, now)
        for _ in range(MAX_ROUNDS):
            now_slot = math.ceil(self.clock() / spacing)
            latest_slot = math.floor(latest / spacing)
            if latest_slot < now_slot:
                return StartSlot(None, now_slot * spacing)
            taken = self._take_queued(now_slot, latest_slot)
            if taken is None:
                taken = self._restart_at(now_slot)
            if taken is not None:
                return StartSlot(taken * spacing, taken * spacing)
            queued = self._next_slot()
            if queued is not None and queued > latest_slot:
                return StartSlot(None, queued * spacing)
            self.lost_rounds += 1
        raise RuntimeError(f"the Claid rate-limit schedule moved under {MAX_ROUNDS} reservations in a row")

    def _take_queued(self, now_slot: int, latest_slot: int) -> int | None:
        """The schedule is ahead of the clock, and not past the caller's latest slot: take the next one."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key,
                UpdateExpression="ADD next_slot :one",
                ConditionExpression="next_slot BETWEEN :now AND :latest",
                ExpressionAttributeValues=_attributes({":one": 1, ":now": now_slot, ":latest": latest_slot}),
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return _slot(answer["Attributes"]["next_slot"])

    def _restart_at(self, now_slot: int) -> int | None:
        """The schedule has fallen behind the clock (or does not exist yet): start it again at now."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key,
                UpdateExpression="SET next_slot = :after",
                ConditionExpression="attribute_not_exists(next_slot) OR next_slot < :now",
                ExpressionAttributeValues=_attributes({":after": now_slot + 1, ":now": now_slot}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return now_slot

    def _next_slot(self) -> int | None:
        item = self.dynamodb.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
        return _slot(item["next_slot"]) if item and "next_slot" in item else None

    def wait_for_start(self, latest: float) -> StartSlot:
        """Reserve a start and sleep until it comes. Returns the slot (at None: nothing was reserved)."""
        slot = self.reserve(latest)
        if slot.at is not None:
            delay = slot.at - self.clock()
            if delay > 0:
                self.sleep(delay)
        return slot
