"""A worker's side of a scale: it watches the generations topic and, when ``spma scale`` asks its
generation to drain, stops reading new inputs, reads its account partitions' internal inputs to
their end, commits, and stops so that ``spma worker`` starts it again in the next generation.

Drain. The market inputs and the keyed input topics (the router's in a generation g >= 1, the
account agent's own in generation 0) are paused: nothing new enters the generation. After a grace
period (every worker polls the topic every second, so every one has paused by then and the last
forwards and broadcasts have landed), the worker waits until each account partition it holds has
handled its internal inputs (streams/scaling/layout.py, ``drained_inputs``) up to their end, commits
and stops. ``spma scale`` checks the group's offsets against those ends before it copies anything,
and rolls the switch back when they fall short. A scale rolled back meanwhile resumes the inputs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

from infra.settings import Settings
from streams.accounts.cursor import Cursor
from streams.agents.metrics import WorkerMetrics
from streams.agents.private import committed_offset, consumer_ends
from streams.scaling.control import Layouts, Watch
from streams.scaling.layout import drained_inputs, routed_inputs
from streams.topics.catalog import MARKET_INPUTS

log = logging.getLogger("spma")

GRACE_S = 3.0
"""Time from the pause to the first check of the ends (every worker's pause, in-flight sends)."""


class GenerationSwitch:
    """Drains the worker's generation when a scale asks for it, then stops the worker."""

    def __init__(
        self, settings: Settings, app: Any, cursor: Cursor, watch: Watch, metrics: WorkerMetrics
    ) -> None:
        self.settings = settings
        self.app = app
        self.cursor = cursor
        self.watch = watch
        self.metrics = metrics
        self.paused = {settings.topic(t) for t in (*MARKET_INPUTS, *routed_inputs())}
        self.drained = set(drained_inputs(settings))
        self.since: float | None = None  # monotonic time the drain started (or last rebalanced)
        self.switching = False  # drained: the worker stops to run the next generation
        metrics.generation.labels(str(settings.layout_partitions)).set(settings.generation)

    @property
    def draining(self) -> bool:
        """True from a drain's start until it is called off (the worker then stops)."""
        return self.since is not None or self.switching

    def asked(self, layouts: Layouts) -> bool:
        """True when the layouts want this worker's generation to stop."""
        return layouts.active != self.settings.generation or not layouts.runnable

    async def tick(self) -> None:
        """Read the topic; start, carry on or call off a drain."""
        layouts = await asyncio.to_thread(self.watch.poll)
        if self.switching:
            return
        if not self.asked(layouts):
            if self.since is not None:
                self.resume()
            return
        now = time.monotonic()
        if self.since is None:
            self.since = now
            self.metrics.draining.set(1)
            log.info("generation %s: draining for a scale", self.settings.generation)
        self.pause()
        if now - self.since >= GRACE_S and self.caught_up():
            await self.app.consumer.commit()
            if self.committed():
                self.stop()

    def on_assigned(self) -> None:
        """A rebalance during a drain: the grace period starts again (new partitions)."""
        if self.since is not None:
            self.since = time.monotonic()

    def held(self, names: set[str]) -> list[Any]:
        """The partitions the worker holds of some topics."""
        return [tp for tp in self.app.assignor.assigned_actives() if tp.topic in names]

    def pause(self) -> None:
        """Stop fetching the new inputs (again after a rebalance, which resumes everything)."""
        self.app.consumer.pause_partitions(self.held(self.paused))

    def resume(self) -> None:
        """The scale was rolled back: read the new inputs again."""
        self.since = None
        self.metrics.draining.set(0)
        self.app.consumer.resume_partitions(self.held(self.paused))
        log.info("generation %s: drain called off, inputs resumed", self.settings.generation)

    def ends(self) -> dict[tuple[str, int], int] | None:
        """The end of every internal input partition held (None: one not seen yet)."""
        ends = consumer_ends(self.app, self.drained)
        return ends if len(ends) >= len(self.held(self.drained)) else None

    def caught_up(self) -> bool:
        """True when every internal input partition held is handled up to its end."""
        ends = self.ends()
        if ends is None:
            return False
        for (topic, partition), end in ends.items():
            done = self.cursor.next.get((topic, partition))
            if done is None:  # nothing handled since the assignment: where it resumed
                done = committed_offset(self.app.consumer, topic, partition) or 0
            if done < end:
                return False
        return True

    def committed(self) -> bool:
        """True when the group's offset of every internal input partition held is its end."""
        ends = self.ends() or {}
        consumer = self.app.consumer
        return all((committed_offset(consumer, t, p) or 0) >= end for (t, p), end in ends.items())

    def stop(self) -> None:
        """Stop the worker (SIGTERM: Faust's orderly shutdown, which commits again); ``spma
        worker`` then starts the next generation."""
        self.switching = True
        log.info("generation %s drained: restarting in the next one", self.settings.generation)
        os.kill(os.getpid(), signal.SIGTERM)
