"""`spma reproduce derive`: Derive's PMRM_2 margin recomputed from its own published cases.

Each case is computed from its ``Scenario`` and ``Parameters`` alone and printed as one JSON
object per line. ``--check`` then holds every figure against the case's ``Result`` (1e-8
relative, absolute floor 1e-8): a line per difference and exit 1 if any. A case file that is
unreadable or lacks a field: one message naming the file and the field, the other cases
computed all the same, and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from engine.derive.cases import Case, CaseError, read_case, result_of
from engine.derive.model import margin
from engine.derive.report import FIGURES, differences, figures
from streams.cli.commands.common import fail

reproduce_app = typer.Typer(
    name="reproduce",
    help="Recompute another venue's published margin cases with its model.",
    no_args_is_help=True,
)


def _read_all(paths: list[Path], check: bool) -> tuple[list[Case], int]:
    """Every case read and validated before any is computed; a bad one is named on stderr (one
    line: the file and the field) and left out, so the others still run. The good cases and
    the number refused."""
    cases, refused = [], 0
    for path in paths:
        try:
            case = read_case(path)
            if check:
                result_of(case, list(FIGURES.values()))
        except CaseError as exc:
            typer.echo(f"spma: error: {exc}", err=True)
            refused += 1
            continue
        cases.append(case)
    return cases, refused


def _figures(case: Case) -> dict[str, Any]:
    """The case's figures, computed from its inputs only (never its Result)."""
    return figures(case.name, margin(case.portfolio, case.params), case.params)


def _check(case: Case, ours: dict[str, Any]) -> int:
    """Print the case's differences from its Result (or that it matches); their count."""
    lines = differences(ours, result_of(case, list(FIGURES.values())))
    for line in lines:
        typer.echo(f"{case.name}: {line}")
    if not lines:
        typer.echo(f"{case.name}: OK, every figure matches Derive's Result")
    return len(lines)


@reproduce_app.command("derive")
def derive(
    cases: list[Path] = typer.Argument(..., help="Derive PMRM_2 case files (JSON)"),
    check: bool = typer.Option(
        False, "--check", help="compare every figure with the case's Result; exit 1 on a difference"
    ),
) -> None:
    """Derive's PMRM_2 IM, MM, scenario losses, contingencies and marks for each case."""
    loaded, refused = _read_all(cases, check)
    failing = 0
    for case in loaded:
        ours = _figures(case)
        if check:
            failing += _check(case, ours) > 0
        else:
            typer.echo(json.dumps(ours))
    if check and loaded:
        typer.echo(f"{len(loaded) - failing} of {len(loaded)} cases match Derive's Result")
    if refused and loaded:
        fail(f"{refused} of {len(cases)} case files refused (named above)")
    if refused:
        raise typer.Exit(2)  # each one named already, in one line
    if failing:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `spma reproduce derive`."""
    app.add_typer(reproduce_app, name="reproduce")
