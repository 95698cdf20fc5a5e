"""The Claid AI Background API: typed models, the one request builder, the HTTP client and its errors."""

from backdrop.claid.client import ClaidClient, Deadline, SceneResult
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
from backdrop.claid.models import SceneRequest, SceneResponse
from backdrop.claid.request import build_scene_request

__all__ = [
    "ClaidAuthError",
    "ClaidCallNotStarted",
    "ClaidClient",
    "ClaidError",
    "ClaidOutOfCredits",
    "ClaidOutcomeUnknown",
    "ClaidRateLimited",
    "ClaidRateLimiter",
    "ClaidRejected",
    "ClaidTransientError",
    "ClaidUnavailable",
    "Deadline",
    "SceneRequest",
    "SceneResponse",
    "SceneResult",
    "build_scene_request",
]
