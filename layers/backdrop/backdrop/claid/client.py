"""HTTP client for scene/create and image edits: maps responses to errors and retries transient trouble within a
deadline. Both endpoints share the account's one rate limit, so both take their starts from one schedule."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from backdrop.claid.errors import (
    ClaidAuthError,
    ClaidCallNotStarted,
    ClaidError,
    ClaidOutcomeUnknown,
    ClaidOutOfCredits,
    ClaidRateLimited,
    ClaidRejected,
    ClaidTransientError,
    ClaidUnavailable,
)
from backdrop.claid.limiter import ClaidRateLimiter
from backdrop.claid.models import ErrorBody, SceneRequest, SceneResponse
from backdrop.clients import Lazy
from backdrop.measures import measure

if TYPE_CHECKING:
    from backdrop.claid.edit_models import EditRequest, EditResponse

# Claid generates synchronously: a call may take tens of seconds. The call budget is the longest we wait for one
# answer (the p99 of Claid's latency plus a margin); a call starts only when the time left covers it.
DEFAULT_CALL_BUDGET_SECONDS = 90.0
CONNECT_SECONDS = 5.0


@dataclass(frozen=True)
class Deadline:
    """Time left to the caller (the Lambda's remaining time minus what is kept back to record the outcome)."""

    remaining: Callable[[], float]
    reserve_seconds: float = 10.0

    def left(self) -> float:
        return self.remaining() - self.reserve_seconds

    @classmethod
    def from_lambda_context(cls, context: Any, reserve_seconds: float = 10.0) -> Deadline:
        return cls(lambda: context.get_remaining_time_in_millis() / 1000.0, reserve_seconds)

    @classmethod
    def after(cls, seconds: float, reserve_seconds: float = 0.0) -> Deadline:
        end = time.monotonic() + seconds
        return cls(lambda: end - time.monotonic(), reserve_seconds)


@dataclass(frozen=True)
class SceneResult:
    response: SceneResponse
    request_id: str | None
    attempts: int
    retried: list[str] = field(default_factory=list)  # what each retry was for: "429", "503", "connect"


@dataclass(frozen=True)
class EditResult:
    response: EditResponse
    request_id: str | None
    attempts: int
    retried: list[str] = field(default_factory=list)


def _header_seconds(response: httpx.Response, name: str) -> float | None:
    raw = response.headers.get(name)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw.split(",")[0].strip()))
    except ValueError:
        return None


def _error_from(response: httpx.Response, attempts: int) -> ClaidError:
    request_id = response.headers.get("x-request-id")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    body = ErrorBody.read(payload)  # flat, wrapped in "detail" (429), or any other JSON: nothing is dropped
    status = response.status_code
    kwargs: dict[str, Any] = {
        "status": status,
        "error_code": body.error_code,
        "error_type": body.error_type,
        "details": body.error_details,
        "request_id": request_id,
        "attempts": attempts,
    }
    message = body.error_message or response.reason_phrase or f"HTTP {status}"
    if status == 429:
        wait = _header_seconds(response, "Retry-After")
        if wait is None:
            wait = _header_seconds(response, "RateLimit-Reset")
        return ClaidRateLimited(message, retry_after=wait, **kwargs)
    if status in (401, 403):
        return ClaidAuthError(message, **kwargs)
    if status == 402:
        return ClaidOutOfCredits(message, **kwargs)
    if status >= 500:
        return ClaidUnavailable(message, **kwargs)
    return ClaidRejected(message, **kwargs)


class ClaidClient:
    """One instance per cold start; thread-safe as httpx.Client is."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.claid.ai",
        scene_path: str = "/v1-ea/scene/create",
        edit_path: str = "/v1/image/edit",
        http: httpx.Client | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        call_budget: float = DEFAULT_CALL_BUDGET_SECONDS,
        limiter: ClaidRateLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/" + scene_path.lstrip("/")
        self._edit_url = base_url.rstrip("/") + "/" + edit_path.lstrip("/")
        self._http = http or httpx.Client()
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._jitter = jitter
        self.call_budget = call_budget
        self._limiter = limiter
        self._clock = clock

    def _backoff(self, attempt: int) -> float:
        return self._jitter() * min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))

    def _start(self, deadline: Deadline, attempts: int) -> None:
        """Returns when a call may start: the time left covers the call budget, and the shared schedule gave a
        start within it. Otherwise raises ClaidCallNotStarted (nothing was sent) with how long to wait."""
        left = deadline.left()
        if left < self.call_budget:
            raise ClaidCallNotStarted(
                f"{left:.0f}s left, a Claid call may take {self.call_budget:.0f}s: not started",
                attempts=attempts,
                retry_after=1.0,
            )
        if self._limiter is None:
            return
        now = self._clock()
        latest = now + left - self.call_budget
        slot = self._limiter.wait_for_start(latest=latest)
        if slot.at is None:
            # Back when that start is within an invocation's reach, not at it: one that came back just after it
            # could find it gone and the next one out of reach again.
            raise ClaidCallNotStarted(
                f"the next start Claid's rate limit allows is {slot.earliest - now:.1f}s away, too late for this "
                "invocation: not started",
                attempts=attempts,
                retry_after=max(1.0, slot.earliest - latest),
            )

    def create_scene(self, request: SceneRequest, deadline: Deadline) -> SceneResult:
        """Returns the images or raises a ClaidError. A call starts only when the deadline leaves room for the
        whole call budget. Transient errors that outlast the deadline are raised as they are (with
        `retry_after`) so the caller can hand the job back to its queue."""
        payload, request_id, attempts, retried = self._call(self._url, request.body(), deadline)
        try:
            parsed = SceneResponse.model_validate(payload)
        except ValidationError:
            raise self._unreadable("a scene response", request_id, attempts) from None
        return SceneResult(response=parsed, request_id=request_id, attempts=attempts, retried=retried)

    def edit_image(self, request: EditRequest, deadline: Deadline) -> EditResult:
        """One image edit, on the same terms as create_scene (the same schedule, retries and errors)."""
        from backdrop.claid.edit_models import EditResponse  # the processor's client never edits: see request.py

        payload, request_id, attempts, retried = self._call(self._edit_url, request.body(), deadline)
        try:
            parsed = EditResponse.model_validate(payload)
        except ValidationError:
            raise self._unreadable("an edit response", request_id, attempts) from None
        return EditResult(response=parsed, request_id=request_id, attempts=attempts, retried=retried)

    @staticmethod
    def _unreadable(what: str, request_id: str | None, attempts: int) -> ClaidOutcomeUnknown:
        measure("ClaidOutcomeUnknown")
        return ClaidOutcomeUnknown(
            f"Claid answered 200 with a body that is not {what}", status=200, request_id=request_id, attempts=attempts
        )

    def _call(self, url: str, body: dict[str, Any], deadline: Deadline) -> tuple[Any, str | None, int, list[str]]:
        retried: list[str] = []
        attempt = 0
        while True:
            self._start(deadline, attempt)
            attempt += 1
            try:
                payload, request_id = self._once(url, body, self.call_budget, attempt)
                return payload, request_id, attempt, list(retried)
            except ClaidTransientError as exc:
                wait = exc.retry_after if exc.retry_after is not None else self._backoff(attempt)
                if isinstance(exc, ClaidRateLimited) and exc.retry_after is None:
                    wait = max(wait, 1.0)
                if attempt >= self._max_attempts or wait + self.call_budget > deadline.left():
                    exc.attempts = attempt
                    if exc.retry_after is None:
                        exc.retry_after = wait
                    raise
                retried.append(str(exc.status) if exc.status else "connect")
                measure("ClaidRetries")
                self._sleep(wait)

    def _once(self, url: str, body: dict[str, Any], budget: float, attempt: int) -> tuple[Any, str | None]:
        timeout = httpx.Timeout(budget, connect=min(CONNECT_SECONDS, budget))
        started = time.monotonic()
        try:
            response = self._http.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached Claid: safe to try again.
            measure("ClaidCalls", dimension=("Status", "connect_error"))
            raise ClaidUnavailable(f"could not connect to Claid: {type(exc).__name__}", attempts=attempt) from None
        except httpx.TransportError as exc:
            measure("ClaidCalls", dimension=("Status", "no_answer"))
            measure("ClaidOutcomeUnknown")
            raise ClaidOutcomeUnknown(
                f"Claid did not answer ({type(exc).__name__}); it may have generated and charged",
                attempts=attempt,
            ) from None
        measure("ClaidLatency", (time.monotonic() - started) * 1000, "Milliseconds")
        measure("ClaidCalls", dimension=("Status", str(response.status_code)))
        if response.status_code != 200:
            raise _error_from(response, attempt)
        request_id = response.headers.get("x-request-id")
        try:
            return response.json(), request_id
        except ValueError:
            raise self._unreadable("JSON", request_id, attempt) from None


def shared_client(
    read_api_key: Callable[[], str],
    *,
    dynamodb: Any,
    table_name: str,
    per_second: int,
    per_minute: int,
    **client_options: Any,
) -> Callable[[], ClaidClient]:
    """What a function hands its logic to reach Claid: the client made on first use (the API key is read then,
    once, however many worker threads ask at the same moment), starting its calls on the account's one shared
    schedule (none when both limits are 0)."""
    limiter = (
        ClaidRateLimiter(dynamodb, table_name, per_second=per_second, per_minute=per_minute)
        if per_second or per_minute
        else None
    )
    return Lazy(lambda: ClaidClient(read_api_key(), limiter=limiter, **client_options)).get
