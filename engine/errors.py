"""The engine's error hierarchy: one base class, so a caller can catch every engine error at once.

Each engine error class also keeps its builtin base (ValueError, LookupError), so an existing
``except ValueError`` still catches it.
"""

from __future__ import annotations


class EngineError(Exception):
    """The base of every error the engine raises."""
