"""The live risk console: one web page on every worker, and the data it polls.

- ``GET /console``: the page (streams/agents/console_static/: hand-written HTML, JS and CSS, no
  build step, nothing fetched from elsewhere, so it works offline), and ``GET
  /console/static/{asset}`` its script and style sheet. They hold no data and need no token.
- ``GET /console/snapshot``: the whole deployment as JSON (accounts by state now and over time,
  the accounts closest to liquidation and in deficit, the insurance fund and its events, ADL,
  output and dlq counts, the marks and their STALE flags). It asks for the bearer token like the
  account view (streams/agents/access.py).

Why ask the peers rather than read the output topics: every figure the console shows is already
in some worker's memory (its partitions' records, the fund owner's state, its counters), so the
worker that serves the page asks every other worker of the group for its own part
(``?local=1``, as the account view forwards) and merges them (streams/agents/console_merge.py).
Reading the topics instead would mean a consumer per worker replaying every output from the
start on each restart to rebuild what the workers already hold. A worker that does not answer
within ``PEER_TIMEOUT_S`` is named in the answer, which is then partial.

The page polls the snapshot every two seconds with ``fetch`` rather than server-sent events:
``EventSource`` cannot send an ``Authorization`` header, and a token in the URL would land in
logs and browser history. The page keeps the token the user types in ``sessionStorage`` (this tab
only, gone when it closes) and sends it as ``Authorization: Bearer`` on each request: the
snapshot, the account view and the what-if.
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View

from streams.agents.console_history import EVERY_S, StateHistory
from streams.agents.console_merge import merge
from streams.agents.console_snapshot import CLOSEST, DEFICITS, local_snapshot
from streams.agents.metrics import count_states
from streams.agents.web import ask_local, owned_partitions
from streams.agents.worker import Worker

PEER_TIMEOUT_S = 2.0
PAGE = "/console"
ASSET = "/console/static/{asset}"
SNAPSHOT = "/console/snapshot"
VIEWS = (PAGE, ASSET, SNAPSHOT)
"""The console's routes."""
OPEN = frozenset({PAGE, ASSET})
"""The console's routes that hold no data: served without the token."""
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
STATIC = files("streams.agents").joinpath("console_static")


def group_urls(worker: Worker) -> list[str]:
    """Every other worker of the group: those that own a partition of the portfolio or the
    fund's table, by the URL each advertises."""
    me = str(worker.app.conf.canonical_url)
    urls = {
        url
        for table in (worker.table, worker.fund_table)
        for url in worker.app.router.table_metadata(table.name)
    }
    return sorted(urls - {me})


async def ask_peer(worker: Worker, url: str) -> dict[str, Any] | None:
    """One worker's own snapshot; None when it cannot be reached or does not answer 200."""
    answer = await ask_local(worker, url, SNAPSHOT, PEER_TIMEOUT_S)
    if answer is None or answer[0] != 200:
        return None
    try:
        body: dict[str, Any] = orjson.loads(answer[1])
    except orjson.JSONDecodeError:
        return None
    return body


async def deployment(worker: Worker, history: StateHistory) -> dict[str, Any]:
    """This worker's snapshot merged with every peer's."""
    urls = group_urls(worker)
    answers = await asyncio.gather(*(ask_peer(worker, url) for url in urls))
    snapshots = [local_snapshot(worker, history)]
    snapshots += [answer for answer in answers if answer is not None]
    unreachable = [url for url, answer in zip(urls, answers, strict=True) if answer is None]
    return merge(snapshots, unreachable, CLOSEST, DEFICITS)


def sample_states(worker: Worker, history: StateHistory) -> None:
    """Count this worker's accounts by state into its history."""
    owned = owned_partitions(worker)
    processors = [p for n, p in worker.partitions.processors.items() if n in owned]
    history.sample(count_states(processors))


def install_console(app: faust.App, worker: Worker) -> StateHistory:
    """Add the console's page, assets and snapshot to the worker's web server, and the timer
    that samples its accounts by state (the access rules come with ``install_views``, given
    ``VIEWS`` and ``OPEN``)."""
    history = StateHistory()

    @app.timer(interval=EVERY_S)  # type: ignore[untyped-decorator]  # faust's untyped decorator
    async def sample() -> None:
        sample_states(worker, history)

    @app.page(PAGE, name="spma-console")
    async def page(view: View, request: Request) -> Response:
        """The console's page."""
        html = STATIC.joinpath("console.html").read_bytes()
        return view.bytes(html, headers={"Content-Type": "text/html; charset=utf-8"})

    @app.page(ASSET, name="spma-console-asset")
    async def asset(view: View, request: Request, asset: str) -> Response:
        """The page's script or style sheet (nothing else: no path reaches other files)."""
        if asset not in ASSETS:
            return view.json({"error": "not found"}, status=404)
        body = STATIC.joinpath(asset).read_bytes()
        return view.bytes(body, headers={"Content-Type": f"{ASSETS[asset]}; charset=utf-8"})

    @app.page(SNAPSHOT, name="spma-console-snapshot")
    async def snapshot(view: View, request: Request) -> Response:
        """The deployment's figures (``?local=1``: this worker's own only)."""
        if request.query.get("local") == "1":
            body = local_snapshot(worker, history)
        else:
            body = await deployment(worker, history)
        return view.bytes(orjson.dumps(body), content_type="application/json")

    return history
