"""What a `backdrop` command says when the command line, AWS or the network says no: one line that names the
problem and what to do, and an exit code, never a traceback.

Exit codes: 2 when what the command was given or needs is wrong or missing (an argument, a stack, a table, a queue,
a region, credentials), 1 when it ran and failed (AWS refused an action, the network failed, Claid said no).
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

NEEDS_SETUP = 2
FAILED = 1

LOCAL_HINT = "for the local stack, export what `backdrop local start` prints"

# Codes AWS answers for a thing that is not there (per service), said plainly with what to check.
_MISSING = {
    "ResourceNotFoundException": "it does not exist (check the name: a stack's outputs give it)",
    "AWS.SimpleQueueService.NonExistentQueue": "no such queue (check the URL: a stack's ...Url outputs give it)",
    "QueueDoesNotExist": "no such queue (check the URL: a stack's ...Url outputs give it)",
    "NoSuchBucket": "no such bucket (check the name: the stack's UploadsBucketName output)",
    "ResourceNotFound": "it does not exist",
    "ParameterNotFound": "no such parameter",
}
_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthFailure",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_BAD_ADDRESS = {"InvalidAddress", "InvalidParameterValue", "InvalidParameterValueException", "ValidationError"}


class UsageError(Exception):
    """The command was given something it cannot use; the message says what and what to do instead."""

    def __init__(self, message: str, code: int = NEEDS_SETUP) -> None:
        super().__init__(message)
        self.code = code


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code for a failure a person can act on; None for anything else (a bug)."""
    from backdrop_kit.deployment import DeploymentNotFound

    if isinstance(exc, UsageError):
        return str(exc), exc.code
    if isinstance(exc, DeploymentNotFound):
        return str(exc), NEEDS_SETUP
    if isinstance(exc, NoRegionError):
        return (
            "no AWS region is set: set AWS_REGION or AWS_DEFAULT_REGION (or use a profile that has one, "
            "AWS_PROFILE); " + LOCAL_HINT,
            NEEDS_SETUP,
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials were found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "run `aws sso login`); " + LOCAL_HINT,
            NEEDS_SETUP,
        )
    if isinstance(exc, ProfileNotFound):
        return f"{exc}: check AWS_PROFILE against ~/.aws/config", NEEDS_SETUP
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return (
            f"cannot reach AWS ({exc}): check the network, or AWS_ENDPOINT_URL (a local stack that has stopped?)",
            FAILED,
        )
    if isinstance(exc, ParamValidationError):
        return f"AWS cannot take this: {exc}", NEEDS_SETUP
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, BotoCoreError):
        return f"AWS SDK error: {exc}", FAILED
    try:
        import httpx
    except ImportError:  # pragma: no cover - the kit depends on it
        httpx = None  # type: ignore[assignment]
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return f"HTTP request failed: {exc}", FAILED
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), FAILED
    return None


def _client_error(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    code, text = str(error.get("Code", "")), str(error.get("Message", "")).strip()
    operation = exc.operation_name
    said = f"{operation}: {code}" + (f" ({text})" if text else "")
    if code in _MISSING:
        return f"{said}: {_MISSING[code]}", NEEDS_SETUP
    if code in _BAD_CREDENTIALS:
        return f"{said}: the AWS credentials are not valid or have expired: sign in again", NEEDS_SETUP
    if code in _DENIED:
        return f"{said}: your AWS identity is not allowed to do this; ask for {operation} on it", FAILED
    if code in _BAD_ADDRESS:
        return f"{said}: check the name or URL given", NEEDS_SETUP
    return f"AWS refused {said}", FAILED
