"""A scale's plan: the generation it builds, the topics it creates, the records it copies and the
time it should take, checked against the deployment's layouts before anything is done."""

from __future__ import annotations

from dataclasses import dataclass

from infra.settings import Settings
from streams.scaling.control import Layouts, Step
from streams.scaling.errors import ScaleRefused
from streams.scaling.layout import OwnTopic, owned_topics

COPY_RATE = 20_000.0
"""Changelog records re-keyed per second (read, re-keyed and written): bench/bench_scale.py
copied 100,000 accounts in 4.6 s on this project's 2-core machines (README "Scaling")."""

SWITCH_S = 8.0
"""Seconds of the command besides the copy: the drain (its grace, the workers' last inputs and
stop) and the records of each step; 6 to 13 s measured (bench/bench_scale.py, the acceptance
test). The workers' restart in the new generation comes on top (README "Scaling")."""


@dataclass(frozen=True)
class Plan:
    """What ``spma scale`` will do."""

    old: Settings  # the active generation's settings
    new: Settings  # the generation it builds
    topics: list[OwnTopic]
    records: int  # the old portfolio changelog's records (an upper bound of what is copied)
    resuming: Step | None  # the step a scale under way last finished

    @property
    def expected_s(self) -> float:
        """The expected time of the whole switch, seconds."""
        return SWITCH_S + self.records / COPY_RATE

    def lines(self) -> list[str]:
        """The plan in words, one line each."""
        old, new = self.old, self.new
        head = (
            f"generation {old.generation} ({old.layout_partitions} account partitions) -> "
            f"generation {new.generation} ({new.layout_partitions})"
        )
        if self.resuming is not None:
            head += f", resuming after step {self.resuming}"
        found = [head, "topics to create:"]
        found += [
            f"  {t.name}: {t.partitions} partitions{', compacted' if t.compacted else ''}"
            for t in self.topics
        ]
        found.append(f"records to copy: up to {self.records} ({old.portfolios_changelog()})")
        found.append(
            f"expected time: {self.expected_s:.0f} s (copy at {COPY_RATE:.0f} records/s plus "
            f"{SWITCH_S:.0f} s to drain the workers), then the workers restart in the new "
            "generation; inputs keep arriving, statuses pause meanwhile"
        )
        return found


def make_plan(settings: Settings, layouts: Layouts, partitions: int, records: int) -> Plan:
    """The plan of a scale to ``partitions`` from the layouts (ScaleRefused when it cannot be)."""
    active = layouts.active_partitions
    switch = layouts.switch
    if switch is not None and switch.partitions != partitions:
        raise ScaleRefused(
            f"a scale to {switch.partitions} partitions is under way (step {switch.step}): "
            f"run `spma scale --partitions {switch.partitions}` to finish it, or --abort"
        )
    if switch is None and partitions <= active:
        raise ScaleRefused(
            f"--partitions {partitions}: generation {layouts.active} has {active} already "
            "(the count only grows)"
        )
    old = settings.for_generation(layouts.active, active)
    new = settings.for_generation(layouts.active + 1, partitions)
    return Plan(old, new, owned_topics(new), records, None if switch is None else switch.step)
