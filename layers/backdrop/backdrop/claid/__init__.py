"""Claid's AI Background and Image Editing APIs: typed models, the one request builder, the HTTP client and its
errors.

Its parts load when first asked for (PEP 562): a function that never calls Claid (the publisher, the recorder) and
imports only the contract's models does not load the HTTP client at its cold start."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "ClaidAuthError": "errors",
    "ClaidCallNotStarted": "errors",
    "ClaidClient": "client",
    "ClaidError": "errors",
    "ClaidOutOfCredits": "errors",
    "ClaidOutcomeUnknown": "errors",
    "ClaidRateLimited": "errors",
    "ClaidRateLimiter": "limiter",
    "ClaidRejected": "errors",
    "ClaidTransientError": "errors",
    "ClaidUnavailable": "errors",
    "Deadline": "client",
    "EditRequest": "models",
    "EditResponse": "models",
    "EditResult": "client",
    "SceneRequest": "models",
    "SceneResponse": "models",
    "SceneResult": "client",
    "build_edit_request": "request",
    "build_scene_request": "request",
    "shared_client": "client",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


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
