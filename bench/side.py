"""The measures that count work rather than time it: the local stack's ceiling, and the image bytes and memory of
each mode. `make bench` runs them beside the burst, in a child process at a lower priority (bench/__main__.py), and
they come back to it by pickle; `--one-at-a-time` runs them in the bench's own process."""

from __future__ import annotations

import copyreg
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bench import burst, modes, report

# The locks that guarded the counters while the measures ran cross the process boundary as fresh ones.
copyreg.pickle(type(threading.Lock()), lambda _lock: (threading.Lock, ()))


@dataclass
class Side:
    ceiling: burst.BurstResult
    connected: modes.ModeRun
    temporary: modes.ModeRun
    memory: tuple[int, int]  # the processor's peak for a small upload, for a large one


def measure(*, ceiling_uploads: int, jobs: int, say: Callable[[str], None], label: str = "") -> Side:
    say(f"local stack ceiling{label}: {ceiling_uploads} uploads, no latency, no limits")
    ceiling = burst.run(
        burst.BurstConfig(
            uploads=ceiling_uploads,
            scale=1,
            median_latency=0,
            per_second=0,
            per_minute=0,
            shared_limiter=False,
            settle_seconds=5,  # a call that went unanswered must not hold the rate measure for 10 minutes
        ),
        progress=False,
    )
    say(f"ceiling{label}: {json.dumps(burst.summary(ceiling))}")
    burst.dump(ceiling, report.RAW / "ceiling.json")

    say(f"connected storage and temporary bucket{label} ({jobs} uploads each): bytes and recorder time")
    connected = modes.run_mode("connected", jobs)
    temporary = modes.run_mode("temporary", jobs)
    say(f"processor memory against upload size{label}")
    return Side(ceiling, connected, temporary, modes.memory_by_upload_size())
