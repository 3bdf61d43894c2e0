"""``spma scale``: the steps that move a running deployment to a new account layout, each one
recorded in the generations topic when done, so that a command killed anywhere and run again
carries on from the last step recorded (or is rolled back with --abort before the switch).

1. prepared: the new generation's topics exist (created if missing).
2. draining: the active generation's workers pause their new inputs, read their account
   partitions' internal inputs to the end, commit and stop (streams/agents/generations.py); the
   command waits for the group to empty, then checks the group's offsets against those ends: a
   shortfall rolls the switch back (the workers start again in the active generation).
3. copied: the drained portfolio table re-keyed into the new changelog (streams/scaling/
   rekey.py), the outputs its outboxes held sent again.
4. The new generation is active: the waiting workers start in it, routers forward the keyed
   inputs from the group's offsets on them (where the drained generation stopped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from infra.settings import Settings
from streams.scaling import broker, tables
from streams.scaling.control import Layouts, Step, Switch, ensure_topic, publish, read_layouts
from streams.scaling.errors import DrainFailed, ScaleRefused
from streams.scaling.layout import drained_inputs
from streams.scaling.plan import Plan, make_plan
from streams.scaling.rekey import rekey

Say = Callable[[str], None]


def plan_scale(settings: Settings, partitions: int) -> tuple[Layouts, Plan]:
    """The layouts recorded and the plan of a scale to ``partitions`` (nothing written)."""
    layouts = read_layouts(settings)
    active = settings.for_generation(layouts.active, layouts.active_partitions)
    return layouts, make_plan(settings, layouts, partitions, tables.changelog_size(active))


def scale(settings: Settings, partitions: int, say: Say, drain_timeout_s: float = 120.0) -> Layouts:
    """Run (or resume) a scale to ``partitions``; the layouts it leaves active."""
    started = time.monotonic()
    ensure_topic(settings)
    layouts, plan = plan_scale(settings, partitions)
    for line in plan.lines():
        say(line)
    if layouts.switch is None:
        layouts = replace(layouts, switch=Switch(plan.new.generation, partitions, Step.PREPARED))
    if step_of(layouts) is Step.PREPARED:
        broker.create_owned(settings, plan.topics)
        layouts = record(settings, layouts.at(Step.DRAINING), say)
    if step_of(layouts) is Step.DRAINING:
        drain(plan, layouts, say, drain_timeout_s)
        copy(plan, say)
        layouts = record(settings, layouts.at(Step.COPIED), say)
    parts = {**layouts.partitions, plan.new.generation: partitions}
    layouts = record(settings, Layouts(plan.new.generation, parts), say)
    say(
        f"generation {layouts.active} active, {partitions} account partitions, "
        f"in {time.monotonic() - started:.1f} s"
    )
    return layouts


def step_of(layouts: Layouts) -> Step | None:
    """The last step of the scale under way (None: none)."""
    return None if layouts.switch is None else layouts.switch.step


def record(settings: Settings, layouts: Layouts, say: Say) -> Layouts:
    """Publish the layouts after a step; say it."""
    publish(settings, layouts)
    step = "active" if layouts.switch is None else str(layouts.switch.step)
    say(f"recorded: {step}")
    return layouts


def abort(settings: Settings, say: Say) -> Layouts:
    """Roll a scale under way back (the active generation's workers start again)."""
    ensure_topic(settings)
    layouts = read_layouts(settings)
    if layouts.switch is None:
        raise ScaleRefused("no scale under way")
    return record(settings, replace(layouts, switch=None), say)


def drain(plan: Plan, layouts: Layouts, say: Say, timeout_s: float) -> None:
    """Wait until the active generation's workers are gone and check what they handled; roll
    the switch back (DrainFailed) when they did not all stop or left inputs unhandled."""
    old = plan.old
    deadline = time.monotonic() + timeout_s
    while (members := broker.group_members(old)) > 0:
        if time.monotonic() > deadline:
            fail_back(
                old,
                layouts,
                f"{members} workers still in group {old.app_id} after {timeout_s:.0f} s",
            )
        time.sleep(0.5)
    say(f"group {old.app_id} empty: generation {old.generation} stopped")
    ends = broker.ends(old, drained_inputs(old))
    done = broker.committed(old, ends)
    short = {tp: (done.get(tp, 0), end) for tp, end in ends.items() if done.get(tp, 0) < end}
    if short:
        fail_back(old, layouts, f"inputs left unhandled (committed, end): {short}")
    say(f"generation {old.generation} drained: {sum(ends.values())} internal inputs handled")


def fail_back(settings: Settings, layouts: Layouts, why: str) -> None:
    """Roll the switch back and raise DrainFailed."""
    publish(settings, replace(layouts, switch=None))
    raise DrainFailed(f"{why}; rolled back to generation {layouts.active}, run the scale again")


def copy(plan: Plan, say: Say) -> None:
    """Re-key the drained table into the new changelog and send its outboxes again."""
    started = time.monotonic()
    table = tables.read_table(plan.old)
    took = time.monotonic() - started
    say(f"read {len(table)} keys of {plan.old.portfolios_changelog()} in {took:.1f} s")
    out = rekey(table, plan.old, plan.new)
    sent = tables.resend(plan.old, out.resend)
    written = tables.write_table(plan.new, out.writes)
    say(
        f"copied {out.accounts} accounts ({written} records, {out.dropped} keys left behind) to "
        f"{plan.new.portfolios_changelog()}, {sent} pending outputs sent again, in "
        f"{time.monotonic() - started:.1f} s"
    )
