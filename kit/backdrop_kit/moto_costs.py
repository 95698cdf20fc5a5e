"""moto's SQS and EventBridge without the costs that grow with a queue's length or repeat on every event.

Profiled in a 1,000-upload burst, the moto server spent most of its time on bookkeeping, not on messages:
- every ReceiveMessage asks, for each message it looks at, the queue's retention period through
  GetQueueAttributes, which computes every attribute, the approximate message counts included (a pass over all
  messages each): a receive on a queue of n messages cost n x n checks (36 ms each with 1,000 waiting);
- each of those checks asks the clock through a datetime subtraction (`moto.core.utils.unix_time`), several
  times per message;
- PutEvents compiles the JSONPath of each of an event's eight fields again for every target it delivers to (a
  parser generator run each time: 34 ms an event).

`install()` (run inside the moto server process, before it serves a request) reads the retention period from the
queue itself, the clock from `time.time()` (the same number: seconds since the epoch), and compiles each JSONPath
once. What a request answers is unchanged; the integration tier holds the queues' and the bus's behaviour.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime
from typing import Any

_INSTALLED = "_backdrop_cheap"


def install() -> None:
    _install_sqs()
    _install_jsonpath()


def _install_jsonpath() -> None:
    import jsonpath_ng.ext

    if getattr(jsonpath_ng.ext.parse, _INSTALLED, False):
        return
    # An expression is not changed by finding with it: one compiled expression serves every event.
    parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    setattr(parse, _INSTALLED, True)
    jsonpath_ng.ext.parse = parse


def _install_sqs() -> None:
    import moto.sqs.models as models

    if getattr(models.unix_time, _INSTALLED, False):
        return
    slow_unix_time = models.unix_time

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else float(slow_unix_time(dt))

    def unix_time_millis(dt: datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    setattr(unix_time, _INSTALLED, True)
    models.unix_time = unix_time
    models.unix_time_millis = unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
