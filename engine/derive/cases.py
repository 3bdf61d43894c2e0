"""Derive's published PMRM_2 cases (v2-core's portfolio_cases/*.json): each file's ``Scenario``
(the portfolio) and ``Parameters`` read into the model's inputs, and its ``Result`` kept apart
for comparison only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from engine.derive.params import Pmrm2Params
from engine.derive.portfolio import Portfolio


class CaseError(ValueError):
    """A case file that cannot be used: unreadable, not JSON, or a field missing or invalid."""

    def __init__(self, path: Path, field: str | None, problem: str) -> None:
        self.path, self.field, self.problem = path, field, problem
        where = f"case file {path}" + (f": field {field}" if field else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Case:
    """One case: its name (the file's stem), inputs and Derive's stated result."""

    name: str
    path: Path
    portfolio: Portfolio
    params: Pmrm2Params
    result: dict[str, Any] | None


def _loc(block: str, loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON path (Scenario.Options[2].Strike)."""
    out = block
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _block(data: dict[str, Any], path: Path, block: str) -> dict[str, Any]:
    """A top-level object of the case, or CaseError naming it."""
    value = data.get(block)
    if not isinstance(value, dict):
        raise CaseError(path, block, "missing" if value is None else "not an object")
    return value


def known_keys(model: type[BaseModel], data: Any) -> Any:
    """The mapping with only the keys the model knows (by Derive's name or ours), recursively:
    Derive's cases carry figures of their own beside the parameters (``IM_PERP_PERCENT_NORMAL``)."""
    if not isinstance(data, dict):
        return data
    out = {}
    for name, info in model.model_fields.items():
        for key in (info.alias, name):
            if key is not None and key in data:
                out[key] = _known_value(info.annotation, data[key])
                break
    return out


def _known_value(annotation: Any, value: Any) -> Any:
    """A field's value pruned by known_keys when its type is a model or a list of models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return known_keys(annotation, value)
    args = get_args(annotation)
    inner = args[0] if args else None
    if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(value, list):
        return [known_keys(inner, item) for item in value]
    return value


def _validate(model: Any, data: dict[str, Any], path: Path, block: str) -> Any:
    """Validate a block into a model; the first complaint becomes a CaseError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        problem = "missing" if first["type"] == "missing" else first["msg"]
        problem = problem.removeprefix("Value error, ")
        raise CaseError(path, _loc(block, tuple(first["loc"])), problem) from None


def _check_feeds(portfolio: Portfolio, path: Path) -> None:
    """Every option's expiry must have its feed (forward, rate, confidences)."""
    feeds = {feed.expiry_s for feed in portfolio.feeds}
    for i, option in enumerate(portfolio.options):
        if option.expiry_s not in feeds:
            problem = f"no Scenario.OptionFeeds entry has FeedExpiry {option.expiry_s}"
            raise CaseError(path, f"Scenario.Options[{i}].Expiry", problem)


def result_of(case: Case, keys: list[str]) -> dict[str, Any]:
    """The case's Result holding every key asked for, or CaseError naming the first missing."""
    if case.result is None:
        raise CaseError(case.path, "Result", "missing")
    for key in keys:
        if key not in case.result:
            raise CaseError(case.path, f"Result.{key}", "missing")
    return case.result


def read_case(path: Path) -> Case:
    """Read and validate a case file (CaseError when it is unusable)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CaseError(path, None, exc.strerror or str(exc)) from None
    except ValueError as exc:
        raise CaseError(path, None, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CaseError(path, None, "not a JSON object")
    portfolio = _validate(Portfolio, _block(data, path, "Scenario"), path, "Scenario")
    _check_feeds(portfolio, path)
    parameters = known_keys(Pmrm2Params, _block(data, path, "Parameters"))
    params = _validate(Pmrm2Params, parameters, path, "Parameters")
    result = data.get("Result")
    return Case(path.stem, path, portfolio, params, result if isinstance(result, dict) else None)
