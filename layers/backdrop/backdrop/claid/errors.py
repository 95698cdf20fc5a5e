"""Claid failures, one class per kind of response, each carrying Claid's error code and x-request-id."""

from __future__ import annotations


class ClaidError(Exception):
    """A Claid call that did not produce images. Its class says what comes next: most are recorded as the job's
    failure; out of credits and transient trouble are retried (the callers catch those by class)."""

    reason = "claid_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        error_type: str | None = None,
        details: dict[str, object] | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.error_type = error_type
        self.details = details or {}
        self.request_id = request_id
        self.attempts = attempts

    def __str__(self) -> str:
        where = f" (HTTP {self.status}" if self.status else " ("
        where += f", code {self.error_code}" if self.error_code else ""
        where += f", request {self.request_id})" if self.request_id else ")"
        return f"{self.message}{where if where != ' ()' else ''}"


class ClaidRejected(ClaidError):
    """400/404/409/422: this input will never succeed as it is."""

    reason = "claid_rejected"


class ClaidAuthError(ClaidError):
    """401/403: the API key is missing, wrong, or lacks the image_generation scope. Operator action."""

    reason = "claid_auth"


class ClaidOutOfCredits(ClaidError):
    """402: the Claid account has no calls left. Stop spending; the job waits in the queue."""

    reason = "claid_out_of_credits"


class ClaidTransientError(ClaidError):
    """Trouble that may pass: retried with backoff, then handed back to the queue."""

    reason = "claid_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ClaidRateLimited(ClaidTransientError):
    """429: wait RateLimit-Reset (or Retry-After) seconds."""

    reason = "claid_rate_limited"


class ClaidUnavailable(ClaidTransientError):
    """5xx, or the connection could not be made (nothing was sent)."""


class ClaidCallNotStarted(ClaidTransientError):
    """Nothing was sent: the time left does not cover a whole call, or Claid's rate limit allows the next start
    too late. The job goes back to its queue untouched, visible again after `retry_after` seconds."""

    reason = "claid_call_not_started"


class ClaidOutcomeUnknown(ClaidError):
    """The request was sent but no answer came (read timeout, connection dropped mid-response).

    Claid may have generated, stored and charged for the images. Retrying could pay twice, so it is not
    retried: the job is recorded as failed with this reason, and a person decides (see docs/operations.md).
    """

    reason = "claid_outcome_unknown"
