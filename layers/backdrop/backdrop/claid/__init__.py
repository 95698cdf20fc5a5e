"""Claid's AI Background and Image Editing APIs: typed models, the one request builder, the HTTP client and its
errors."""

from backdrop.claid.client import ClaidClient, Deadline, EditResult, SceneResult, shared_client
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
from backdrop.claid.models import EditRequest, EditResponse, SceneRequest, SceneResponse
from backdrop.claid.request import build_edit_request, build_scene_request

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
    "EditRequest",
    "EditResponse",
    "EditResult",
    "SceneRequest",
    "SceneResponse",
    "SceneResult",
    "build_edit_request",
    "build_scene_request",
    "shared_client",
]
