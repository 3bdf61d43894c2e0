"""Deterministic output ids: the same input gives the same id on every run, replay and worker,
so a consumer drops a copy by its id (and one id always carries the same bytes)."""

from __future__ import annotations

import hashlib


def deterministic_id(kind: str, *parts: object) -> str:
    """``kind-`` and 24 hex digits of the SHA-256 of the kind and parts, joined by ``|``."""
    text = "|".join(map(str, (kind, *parts)))
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"
