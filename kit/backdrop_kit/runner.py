"""Plays Lambda's part locally: loads the handlers template.yaml names, feeds them real event shapes from the
queues, with a context whose deadline is real, and honours partial batch failures, retries and dead letters."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.util
import json
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, ItemsView, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

import boto3
import httpx

from backdrop_kit.forwarder import forward_once
from backdrop_kit.stack import ACCOUNT, LOCAL_VISIBILITY_TIMEOUT, REGION, EventSource, LocalStack, WebhookTarget

IN_FLIGHT_VISIBILITY_TIMEOUT = 300
# Lambda's pollers long-poll; moto serves one request at a time, so the runner polls short and, while a queue stays
# empty, waits longer between receives (50 ms, doubling up to 0.4 s): ten idle pollers at 50 ms were 200 requests a
# second that moto and this process served for nothing, beside a burst that needs 2.
IDLE_WAITS = (0.05, 0.1, 0.2, 0.4)
# Powertools warns on each invocation that adds no metric (a test event, a repeated record). In Lambda the line goes
# to the function's log; here it would reach the kit command's stderr (and break the promise that `--json` prints
# one document and nothing else), so the runner does not show it.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

_import_lock = threading.Lock()
# Which function made an AWS call: a context variable, so threads a handler starts with its context copied
# (the processor's record workers) are counted as that function's.
_current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function_id", default=None)


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call a handler made (recorded so a test can check template.yaml grants it)."""

    function_id: str
    service: str
    operation: str
    params: dict[str, Any]


API_CALLS: list[ApiCall] = []


def current_function() -> str | None:
    """The function whose invocation is running in this thread (None outside any handler): lets a
    measurement hook attribute an AWS call to a function."""
    return _current_function.get()


def _record_api_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    function_id = _current_function.get()
    if function_id:
        API_CALLS.append(ApiCall(function_id, model.service_model.endpoint_prefix, model.name, dict(params)))


def _watch_api_calls() -> None:
    # Clients copy the session's handlers when they are made, so this runs before any handler module loads.
    boto3._get_default_session().events.register(
        "before-parameter-build", _record_api_call, unique_id="backdrop-kit-api-calls"
    )


class LocalContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int = 512) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _SteadyEnviron(os._Environ[str]):
    """os.environ, except that `items()` reads one copy of it. Each function is loaded with its own variables set and
    removed after, while other threads (the Claid emulator, warm instances making a client) read the environment:
    botocore and httpx look for proxies with `os.environ.items()`, which lists the names first and reads each
    after, and raised KeyError for a variable removed in between (a Claid call of the bench's ceiling failed so).
    In Lambda each function has a process of its own; here they share one."""

    def items(self) -> ItemsView[str, str]:
        data = self._data.copy()  # type: ignore[attr-defined]  # one step under the GIL
        return {self.decodekey(name): self.decodevalue(value) for name, value in data.items()}.items()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    if type(os.environ) is os._Environ:
        os.environ.__class__ = _SteadyEnviron
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Idle:
    """The wait after each empty receive in a row (IDLE_WAITS), from the first again once something arrives."""

    def __init__(self) -> None:
        self._empty = 0

    def next_wait(self) -> float:
        self._empty += 1
        return IDLE_WAITS[min(self._empty, len(IDLE_WAITS)) - 1]

    def busy(self) -> None:
        self._empty = 0


@dataclass
class LoadedFunction:
    """One warm 'container': a fresh import of the handler module with the function's environment."""

    function_id: str
    module: ModuleType
    handler: Callable[[dict[str, Any], Any], Any]
    timeout: float
    memory: int
    environment: dict[str, str]

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LocalContext(
            self.environment.get("AWS_LAMBDA_FUNCTION_NAME", self.function_id), self.timeout, self.memory
        )
        # The environment was in place when the module was imported (its cold start read it); invocations
        # from several worker threads must not swap os.environ under each other.
        token = _current_function.set(self.function_id)
        try:
            return self.handler(event, context)
        finally:
            _current_function.reset(token)


def load_function(stack: LocalStack, function_id: str) -> LoadedFunction:
    spec = stack.template.functions(stack.parameters)[function_id]
    environment = stack.function_environment(function_id)
    # The module gets the name Lambda gives it (the handler file's stem), not a unique one: libraries key
    # state on it (Powertools idempotency keys include the function's module), so it must match across
    # "containers". Each load is still a separate module object, never put in sys.modules.
    name = spec.module_file.stem
    _watch_api_calls()
    # The handlers' loggers write to the stream they find at import (Powertools binds sys.stdout then): in Lambda
    # stdout and stderr both reach CloudWatch, while a kit command keeps stdout for its own output (a JSON report
    # that `jq` reads), so here they log to stderr.
    with _import_lock, _environment(environment), contextlib.redirect_stdout(sys.stderr):
        module_spec = importlib.util.spec_from_file_location(name, spec.module_file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"{function_id}: cannot load {spec.module_file}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    handler = getattr(module, spec.function_name)
    return LoadedFunction(function_id, module, handler, float(spec.timeout), int(spec.memory), environment)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from received messages."""
    records = []
    for message in messages:
        attrs = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attrs.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                    "ApproximateFirstReceiveTimestamp": attrs.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def invocation_record(fn: LoadedFunction, event: dict[str, Any], error: Exception, attempts: int) -> dict[str, Any]:
    """What Lambda sends to an asynchronous invocation's OnFailure destination once its retries are spent: the
    event is `requestPayload`, the error `responsePayload`."""
    name = fn.environment.get("AWS_LAMBDA_FUNCTION_NAME", fn.function_id)
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error)[:500], "errorType": type(error).__name__},
    }


@dataclass(frozen=True)
class Invocation:
    """One handler invocation as the runner saw it (for billed-duration estimates)."""

    function_id: str
    started: float  # time.monotonic()
    seconds: float
    records: int


@dataclass
class RunStats:
    invocations: dict[str, int] = field(default_factory=dict)
    batch_item_failures: int = 0
    handler_errors: int = 0
    dead_lettered: int = 0
    timeline: list[Invocation] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, function_id: str) -> None:
        with self._lock:
            self.invocations[function_id] = self.invocations.get(function_id, 0) + 1

    def timed(self, function_id: str, started: float, records: int) -> None:
        with self._lock:
            self.timeline.append(Invocation(function_id, started, time.monotonic() - started, records))


class Runner:
    """Drains the stack's queues through the handlers until nothing is left in flight."""

    def __init__(
        self,
        stack: LocalStack,
        *,
        processor_workers: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """`processor_workers`: instances per SQS-fed function; by default as many as the event source's
        MaximumConcurrency allows, as Lambda would run under a burst."""
        self.stack = stack
        self.stats = RunStats()
        self.progress = progress
        # Instances are made as Lambda makes them: when a batch finds none free (a cold start), up to the limit.
        self._workers: dict[str, list[LoadedFunction]] = {}
        self._free: dict[str, list[LoadedFunction]] = {}
        self._limits: dict[str, int] = {}
        self._loading: dict[str, int] = {}
        self._instances = threading.Condition()
        for source in stack.sources:
            limit = source.max_concurrency
            if source.kind == "sqs" and processor_workers is not None:
                limit = processor_workers
            self._limits[source.function_id] = limit
            self._workers[source.function_id] = [load_function(stack, source.function_id)]
            self._free[source.function_id] = list(self._workers[source.function_id])
        self._sqs = stack.client("sqs")
        self._event_attempts: dict[str, int] = {}

    def _arn(self, queue_url: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"

    def _retry_later(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        """Failed messages come back after the short local visibility timeout, unless the handler chose its
        own (Claid's rate-limit reset)."""
        handles = {c.params.get("ReceiptHandle") for c in API_CALLS if c.operation == "ChangeMessageVisibility"}
        for message in messages:
            if message["ReceiptHandle"] not in handles:
                self._sqs.change_message_visibility(
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=LOCAL_VISIBILITY_TIMEOUT,
                )

    def instance_limit(self, function_id: str) -> int:
        """The most instances of a function that run at once (an SQS source's MaximumConcurrency)."""
        return self._limits.get(function_id, 1)

    def _take_instance(self, function_id: str, stop: threading.Event) -> LoadedFunction | None:
        """A free warm instance, or a new one while under the limit; waits while all are busy (None: stopped)."""
        with self._instances:
            while not self._free[function_id] and self._count(function_id) >= self._limits[function_id]:
                if stop.is_set():
                    return None
                self._instances.wait(0.1)
            if self._free[function_id]:
                return self._free[function_id].pop()
            self._loading[function_id] = self._loading.get(function_id, 0) + 1  # counted while it loads
        try:
            fn = load_function(self.stack, function_id)
        finally:
            with self._instances:
                self._loading[function_id] -= 1
        with self._instances:
            self._workers[function_id].append(fn)
        return fn

    def _count(self, function_id: str) -> int:
        return len(self._workers[function_id]) + self._loading.get(function_id, 0)

    def _give_back(self, fn: LoadedFunction) -> None:
        with self._instances:
            self._free[fn.function_id].append(fn)
            self._instances.notify_all()

    def _receive(self, source: EventSource, fn: LoadedFunction) -> list[dict[str, Any]]:
        # In AWS the queue's visibility timeout is 6x the function's timeout, so a message is never handed to a
        # second instance while the first still works on it: received here for longer than any invocation.
        answer = self._sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=min(10, source.batch_size),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=max(IN_FLIGHT_VISIBILITY_TIMEOUT, 6 * int(fn.timeout)),
        )
        return list(answer.get("Messages", []))

    def _invoke_batch(self, source: EventSource, fn: LoadedFunction, messages: list[dict[str, Any]]) -> None:
        self.stats.count(source.function_id)
        started = time.monotonic()
        try:
            result = fn.invoke(sqs_event(messages, self._arn(source.queue_url))) or {}
            # Lambda reads a partial batch response only when the event source mapping asks for one.
            reported = result.get("batchItemFailures", []) if source.report_batch_item_failures else []
            failed = {f["itemIdentifier"] for f in reported}
        except Exception:
            # A whole-batch failure: every message comes back after its visibility timeout.
            self.stats.handler_errors += 1
            failed = {m["MessageId"] for m in messages}
        finally:
            self.stats.timed(source.function_id, started, len(messages))
        self.stats.batch_item_failures += len(failed)
        self._retry_later(source.queue_url, [m for m in messages if m["MessageId"] in failed])
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )

    def _invoke_async(self, source: EventSource, fn: LoadedFunction, message: dict[str, Any]) -> None:
        """Asynchronous invocation, as Lambda runs an EventBridge rule's target: the event once, retried on error
        (EventInvokeConfig), then an invocation record to the OnFailure destination, if any."""
        event = json.loads(message["Body"])
        self.stats.count(source.function_id)
        started = time.monotonic()
        try:
            fn.invoke(event)
            self.stats.timed(source.function_id, started, 1)
        except Exception as exc:
            self.stats.timed(source.function_id, started, 1)
            self.stats.handler_errors += 1
            attempts = self._event_attempts.get(event["id"], 0) + 1
            self._event_attempts[event["id"]] = attempts
            if attempts < source.max_attempts:
                self._retry_later(source.queue_url, [message])
                return
            self.stats.dead_lettered += 1
            if source.on_failure_url:
                record = invocation_record(fn, event, exc, attempts)
                self._sqs.send_message(QueueUrl=source.on_failure_url, MessageBody=json.dumps(record))
        self._sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _in_flight(self) -> int:
        total = 0
        for queue_url in [s.queue_url for s in self.stack.sources] + [w.inbox_url for w in self.stack.webhooks]:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        return total

    def drain(self, timeout: float = 300.0, cancel: threading.Event | None = None) -> RunStats:
        """Run until every queue feeding a function is empty (failed messages included: they come back or
        dead-letter), or until `cancel` is set. Processor workers run in parallel threads, one warm module each."""
        end = time.monotonic() + timeout
        stop = threading.Event()
        errors: list[BaseException] = []

        def work(source: EventSource, pool: ThreadPoolExecutor) -> None:
            """Lambda's queue of asynchronous invocations for one rule target: each event goes to a free instance
            (made if none is free and the target's concurrency allows)."""
            idle = _Idle()
            try:
                while not stop.is_set():
                    answer = self._sqs.receive_message(
                        QueueUrl=source.queue_url,
                        MaxNumberOfMessages=10,
                        VisibilityTimeout=IN_FLIGHT_VISIBILITY_TIMEOUT,
                    )
                    messages = answer.get("Messages", [])
                    if not messages:
                        stop.wait(idle.next_wait())
                    else:
                        idle.busy()
                    for n, message in enumerate(messages):
                        fn = self._take_instance(source.function_id, stop)
                        if fn is None:  # stopped: the events not handed to an instance are visible again at once
                            for left in messages[n:]:
                                self._sqs.change_message_visibility(
                                    QueueUrl=source.queue_url, ReceiptHandle=left["ReceiptHandle"], VisibilityTimeout=0
                                )
                            return
                        pool.submit(on_instance, fn, partial(self._invoke_async, source, fn, message))
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                stop.set()

        def on_instance(fn: LoadedFunction, invocation: Callable[[], None]) -> None:
            """One invocation on an instance taken for it, which is given back however it ends."""
            try:
                invocation()
            except BaseException as exc:
                errors.append(exc)
                stop.set()
            finally:
                self._give_back(fn)

        def poll(source: EventSource, pool: ThreadPoolExecutor) -> None:
            """Lambda's poller for one SQS event source: each batch it receives goes to a free instance (made
            if none is free and the source's MaximumConcurrency allows), and it waits while all are busy."""
            idle = _Idle()
            try:
                while not stop.is_set():
                    fn = self._take_instance(source.function_id, stop)
                    if fn is None:
                        return
                    messages = self._receive(source, fn)
                    if not messages:
                        self._give_back(fn)
                        stop.wait(idle.next_wait())
                        continue
                    idle.busy()
                    pool.submit(on_instance, fn, partial(self._invoke_batch, source, fn, messages))
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                stop.set()

        def deliver(target: WebhookTarget) -> None:
            idle = _Idle()
            with httpx.Client() as http:
                try:
                    while not stop.is_set():
                        if forward_once(self._sqs, target, http) == 0:
                            stop.wait(idle.next_wait())
                        else:
                            idle.busy()
                except BaseException as exc:
                    errors.append(exc)
                    stop.set()

        pools = {
            source.function_id: ThreadPoolExecutor(self._limits[source.function_id], source.function_id)
            for source in self.stack.sources
        }
        threads = [
            threading.Thread(
                target=poll if source.kind == "sqs" else work,
                args=(source, pools[source.function_id]),
                daemon=True,
                name=source.queue_url,
            )
            for source in self.stack.sources
        ] + [
            threading.Thread(target=deliver, args=(target,), daemon=True, name=f"{target.rule_id}-forwarder")
            for target in self.stack.webhooks
        ]
        for thread in threads:
            thread.start()
        try:
            quiet_checks = 0
            last_report = 0.0
            while time.monotonic() < end and not stop.is_set():
                if cancel is not None and cancel.is_set():
                    break
                left = self._in_flight()
                if self.progress and time.monotonic() - last_report > 1.0:
                    self.progress(f"in flight: {left} message(s); invocations: {self.stats.invocations}")
                    last_report = time.monotonic()
                # Two quiet readings in a row: S3 notifications and EventBridge deliveries are asynchronous.
                quiet_checks = quiet_checks + 1 if left == 0 else 0
                if quiet_checks >= 3:
                    break
                stop.wait(0.2)
            else:
                if not stop.is_set():
                    raise TimeoutError(f"queues still busy after {timeout:.0f}s: {self._in_flight()} message(s)")
        finally:
            stop.set()
            longest = max((fn.timeout for fns in self._workers.values() for fn in fns), default=120.0)
            for thread in threads:
                thread.join(timeout=longest + 10)
            for pool in pools.values():
                pool.shutdown(wait=True)
        if errors:
            raise errors[0]
        return self.stats

    def drain_until(self, stop: threading.Event, *, check_every: float = 1.0, timeout: float = 600.0) -> None:
        """Drain whenever work arrives, until `stop` is set. While the queues are quiet, only look at them every
        `check_every` seconds: a drain's workers poll every 50 ms, which kept moto (one request at a time, so no
        long polling) and this process a quarter of a core busy with nothing to do."""
        while not stop.is_set():
            if self._in_flight():
                self.drain(timeout=timeout, cancel=stop)
            stop.wait(check_every)

    def function(self, function_id: str) -> LoadedFunction:
        """The first warm instance of a function (loaded on first use)."""
        if function_id not in self._workers:
            self._workers[function_id] = [load_function(self.stack, function_id)]
        return self._workers[function_id][0]

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        return self.function(function_id).invoke(event)
