"""One schedule of Claid call starts shared by every processor instance, so the stack stays under Claid's limits.

Claid counts requests per account in sliding windows (default 4 per second and 120 per minute). Each instance
reserves its next start time in one DynamoDB item (pk `RATELIMIT#claid`) with an optimistic version check:
starts are handed out in order, each no earlier than the window rules allow, and the caller sleeps until its
start. A start that would come too late for the caller's time budget is not taken; the caller hands its job
back to the queue and learns how long to wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

# Requests reach Claid a little later than they leave, and not all equally late: the windows are kept a
# little wider than Claid's so that jitter in transit cannot make two starts look closer than they were.
SECOND_WINDOW = 1.1
MINUTE_WINDOW = 60.5


@dataclass(frozen=True)
class StartSlot:
    at: float | None  # epoch seconds the call may start; None: not taken (too late for the caller)
    earliest: float  # the earliest start the schedule could give


def next_start(starts: list[float], now: float, limits: list[tuple[int, float]]) -> float:
    """The earliest time >= now, and not before any start already given, at which one more start keeps every
    (limit, window) at most `limit` starts in any `window` seconds."""
    t = max([now, *starts])
    moved = True
    while moved:
        moved = False
        for limit, window in limits:
            recent = [s for s in starts if s > t - window]
            if len(recent) >= limit:
                # The start that must leave the window before this one fits (a move within rounding error
                # means it has just left).
                later = recent[len(recent) - limit] + window
                if later > t + 1e-6:
                    t, moved = later, True
    return t


@dataclass
class ClaidRateLimiter:
    dynamodb: Any
    table_name: str
    per_second: int = 4
    per_minute: int = 120
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    name: str = "claid"
    _key: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self._key = {"pk": {"S": f"RATELIMIT#{self.name}"}, "sk": {"S": "STARTS"}}

    @property
    def limits(self) -> list[tuple[int, float]]:
        found = []
        if self.per_second:
            found.append((self.per_second, SECOND_WINDOW))
        if self.per_minute:
            found.append((self.per_minute, MINUTE_WINDOW))
        return found

    def reserve(self, latest: float) -> StartSlot:
        """Take the next start if it is no later than `latest` (epoch seconds)."""
        for _ in range(50):
            item = self.dynamodb.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
            version = int(item["version"]["N"]) if item else 0
            now = self.clock()
            keep_after = now - MINUTE_WINDOW
            starts = sorted(float(v["N"]) for v in (item or {}).get("starts", {}).get("L", []))
            starts = [s for s in starts if s > keep_after]
            at = next_start(starts, now, self.limits)
            if at > latest:
                return StartSlot(None, at)
            try:
                self.dynamodb.put_item(
                    TableName=self.table_name,
                    Item={
                        **self._key,
                        "version": {"N": str(version + 1)},
                        "starts": {"L": [{"N": str(Decimal(f"{s:.3f}"))} for s in [*starts, at]]},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                self.sleep(random.uniform(0.005, 0.05))  # another instance took a start first: read again
                continue
            return StartSlot(at, at)
        raise RuntimeError("the Claid rate-limit schedule is too contended: 50 attempts in a row lost the race")

    def wait_for_start(self, latest: float) -> StartSlot:
        """Reserve a start and sleep until it comes. Returns the slot (at None: nothing was reserved)."""
        slot = self.reserve(latest)
        if slot.at is not None:
            delay = slot.at - self.clock()
            if delay > 0:
                self.sleep(delay)
        return slot
