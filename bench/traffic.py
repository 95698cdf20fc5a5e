"""What each function asks of AWS and how many image bytes pass through it, counted at the client.

botocore's event hooks see every call a handler's boto3 clients make (attributed to the function by the runner's
context variable); the recorder's downloads of Claid's tmp_urls go through its httpx client, which is swapped
for a counting one. Register before the Runner loads the handlers: clients copy the session's hooks when made.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
from backdrop_kit.runner import LoadedFunction, current_function

HARNESS = "kit"  # calls made outside any handler: the bench's uploads, the runner's polling, the Claid emulator


def _body_size(body: Any) -> int:
    if isinstance(body, bytes | bytearray | memoryview):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if hasattr(body, "seek") and hasattr(body, "tell"):  # botocore wraps PutObject bodies in a file object
        here = body.tell()
        size = body.seek(0, 2) - here
        body.seek(here)
        return int(size)
    return 0


def _attribute_value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's item size rule, roughly: names and values in UTF-8, numbers about half their digits."""
    (kind, inner), *_ = value.items()
    if kind in ("S", "B"):
        return len(str(inner).encode())
    if kind == "N":
        return len(str(inner)) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_attribute_value_bytes(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _attribute_value_bytes(v) + 1 for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v)) for v in inner)
    return 0


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _attribute_value_bytes(value) for name, value in item.items())


@dataclass
class Traffic:
    """Counters keyed by function id (or HARNESS)."""

    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (function, service, operation)
    image_bytes_read: Counter[str] = field(default_factory=Counter)  # S3 GetObject bodies
    image_bytes_written: Counter[str] = field(default_factory=Counter)  # S3 PutObject bodies
    http_bytes_downloaded: Counter[str] = field(default_factory=Counter)  # tmp_url downloads
    write_units: Counter[str] = field(default_factory=Counter)  # DynamoDB on-demand write request units
    read_units: Counter[str] = field(default_factory=Counter)  # DynamoDB on-demand read request units
    event_entries: Counter[str] = field(default_factory=Counter)  # EventBridge PutEvents entries
    errors: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # (function, service, op, code)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def who(self) -> str:
        return current_function() or HARNESS

    # --- botocore hooks -------------------------------------------------------------------------------
    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        # Presigning a URL builds parameters too, but sends nothing: calls are counted after they are made.
        who, service, operation = self.who(), model.service_model.endpoint_prefix, model.name
        with self._lock:
            if service == "s3" and operation == "PutObject":
                self.image_bytes_written[who] += _body_size(params.get("Body"))
            elif service == "events" and operation == "PutEvents":
                self.event_entries[who] += len(params.get("Entries", []))
            elif service == "dynamodb":
                self.write_units[who] += _write_units(operation, params)

    def after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        who, service, operation = self.who(), model.service_model.endpoint_prefix, model.name
        with self._lock:
            self.calls[(who, service, operation)] += 1
            code = (parsed.get("Error") or {}).get("Code")
            if code:
                self.errors[(who, service, operation, str(code))] += 1
            elif service == "s3" and operation == "GetObject":
                self.image_bytes_read[who] += int(parsed.get("ContentLength") or 0)
            elif service == "dynamodb":
                self.read_units[who] += _read_units(operation, parsed)

    def downloaded(self, function_id: str, count: int) -> None:
        with self._lock:
            self.http_bytes_downloaded[function_id] += count

    def operations(self, function_id: str, service: str) -> Counter[str]:
        return Counter({op: n for (who, svc, op), n in self.calls.items() if who == function_id and svc == service})


def _write_units(operation: str, params: dict[str, Any]) -> int:
    """On-demand write request units: 1 per KB written (2 inside a transaction); updates and deletes are
    counted at 1 KB, which holds for backdrop's counters and reservations."""
    if operation == "PutItem":
        return math.ceil(max(1, item_bytes(params.get("Item", {}))) / 1024)
    if operation in ("UpdateItem", "DeleteItem"):
        return 1
    if operation == "TransactWriteItems":
        total = 0
        for entry in params.get("TransactItems", []):
            (kind, body), *_ = entry.items()
            size = item_bytes(body.get("Item", {})) if kind == "Put" else 1024
            total += 2 * math.ceil(max(1, size) / 1024)
        return total
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values())
    return 0


def _read_units(operation: str, parsed: dict[str, Any]) -> int:
    """On-demand read request units: 1 per 4 KB strongly consistent (counted so: backdrop's reads are)."""
    if operation == "GetItem":
        return math.ceil(max(1, item_bytes(parsed.get("Item", {}))) / 4096)
    if operation == "Query":
        return math.ceil(max(1, sum(item_bytes(i) for i in parsed.get("Items", []))) / 4096)
    return 0


class CountingHttp(httpx.Client):
    """The recorder's httpx client, counting the bytes each streamed download brought in."""

    def __init__(self, traffic: Traffic, function_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._traffic = traffic
        self._function_id = function_id

    @contextmanager
    def stream(self, *args: Any, **kwargs: Any) -> Iterator[httpx.Response]:
        with super().stream(*args, **kwargs) as response:
            try:
                yield response
            finally:
                self._traffic.downloaded(self._function_id, response.num_bytes_downloaded)


def watch(traffic: Traffic) -> None:
    """Count every boto3 call from now on (clients made later inherit the hooks)."""
    events = boto3._get_default_session().events
    events.register("before-parameter-build", traffic.before_parameter_build, unique_id="bench-traffic-params")
    events.register("after-call", traffic.after_call, unique_id="bench-traffic-after")


def unwatch() -> None:
    events = boto3._get_default_session().events
    events.unregister("before-parameter-build", unique_id="bench-traffic-params")
    events.unregister("after-call", unique_id="bench-traffic-after")


def count_downloads(traffic: Traffic, fn: LoadedFunction) -> None:
    """Swap a loaded recorder's httpx client for a counting one with the same settings."""
    recorder = getattr(fn.module, "recorder", None)
    if recorder is not None and isinstance(getattr(recorder, "http", None), httpx.Client):
        recorder.http = CountingHttp(traffic, fn.function_id, follow_redirects=False)
