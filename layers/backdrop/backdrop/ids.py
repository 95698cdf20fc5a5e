"""Stable ids: the same parts always give the same id, wherever and however often it is worked out."""

from __future__ import annotations

import hashlib

# The parts are joined with the ASCII unit separator, which no bucket, key or reason holds.
_SEPARATOR = "\x1f"


def stable_id(*parts: str) -> str:
    """32 hex characters of the SHA-256 of the parts: a job's, a refusal's or an edit's id."""
    return hashlib.sha256(_SEPARATOR.join(parts).encode()).hexdigest()[:32]
