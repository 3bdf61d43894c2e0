"""What can stop a scale: a refused request, a drain that did not finish, a broken record."""

from __future__ import annotations


class ScaleError(Exception):
    """A scale cannot go on; the message says why and what to do."""


class ScaleRefused(ScaleError):
    """The request contradicts the deployment (fewer partitions, another scale under way)."""


class DrainFailed(ScaleError):
    """Generation g did not hand over everything below the cut; the switch is rolled back."""
