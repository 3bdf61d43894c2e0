"""The worker's HTTP views on Faust's web server: ``GET /health``, ``/ready``, ``/metrics`` and
``/accounts/{id}``, ``POST /accounts/{id}/what-if`` and ``/accounts/{id}/pre-trade``, and
nothing else: Faust's own views (its tables' raw values, its router) are
off, any other path is a 404, and every view but health, readiness and metrics asks for the
bearer token when one is set (it must be when the worker listens beyond loopback:
``streams/agents/access.py``).

``/health`` answers 200 while the process and its event loop do; ``/ready`` 200 or 503 with the
reasons (streams/agents/health.py).

``/metrics`` renders the worker's own Prometheus registry (faust/metrics.py), after setting the
gauges that describe state (accounts by state, the insurance fund) from that state.

``/accounts/{id}`` answers with the account's margin as the margin-status topic would state it
now (state, equity, IM, MM, every component, ratio, parameter version), explained as `spma
margin` prints it (engine/explain.py), from whichever worker owns the account's partition; the
what-if and pre-trade views (streams/accounts/whatif.py) are routed the same way, the body
forwarded with the token. Faust's ``@app.table_route`` cannot find that worker here: it hashes the
table's *serialized* key (JSON, quotes included) with aiokafka's murmur2 partitioner, while an
account lives on the partition its input arrived on, chosen by the producer that wrote it
(librdkafka's default hashes the raw key with CRC32; Java clients use murmur2 on it), and the
portfolio table follows the input's partition. So the view routes itself: a worker that holds the
account answers from its partition's processor; any other asks the owners of the partitions the
usual partitioners give for the key first, then the remaining workers, with ``?local=1`` so that a
worker asked on another's behalf answers only from its own state (no forwarding loops). The worker
URLs come from the group's assignment (the same map table_route uses), so every worker must
advertise a distinct URL (``advertised_url``).
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import faust
import orjson
from aiohttp import web
from aiokafka.partitioner import murmur2
from faust.web import Request, Response, View
from yarl import URL

from engine.explain import explain
from infra.settings import Settings
from streams.accounts.dynamic import effective_psr
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.accounts.status import status_record
from streams.accounts.subaccounts import decorate, standalone_requirements
from streams.accounts.whatif import MAX_BODY, RequestError, pre_trade_answer, what_if_answer
from streams.agents.access import OPEN_PATHS, install_access
from streams.agents.metrics import count_states
from streams.agents.worker import Worker
from streams.fund.owner import FUND_KEY, FundOwner
from streams.market.state import MarketState, market_from_dict
from streams.market.table import load_market

FORWARD_TIMEOUT_S = 5.0
VIEWS = (
    "/health",
    "/ready",
    "/metrics",
    "/accounts/{account}",
    "/accounts/{account}/what-if",
    "/accounts/{account}/pre-trade",
)
"""The worker's views: any other route (Faust's) is not served."""
# Fields of a margin-status record that describe the input that caused it: a view has none.
INPUT_FIELDS = {"status_id", "input_topic", "input_partition", "input_offset"}
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
ACTIONS = {"what-if": what_if_answer, "pre-trade": pre_trade_answer}
"""The POST views on an account: what-if and pre-trade (streams/accounts/whatif.py)."""


def advertised_url(settings: Settings) -> str:
    """The URL other workers reach this one at: the web host, or this machine's address when the
    host is a bind-all wildcard (docker-compose, where every replica has the same settings)."""
    host = settings.web_host
    if host in WILDCARD_HOSTS:
        host = socket.gethostbyname(socket.gethostname())
    return f"http://{host}:{settings.web_port}"


def key_partitions(key: str, partitions: int) -> list[int]:
    """The partitions producers put a key on: librdkafka's default (CRC32, what confluent-kafka
    and the project's tools use), then murmur2 (Java clients and aiokafka); no repeats."""
    raw = key.encode()
    found = [zlib.crc32(raw) % partitions, (murmur2(raw) & 0x7FFFFFFF) % partitions]
    return list(dict.fromkeys(found))


def owned_partitions(worker: Worker, table: Any = None) -> set[int]:
    """The partitions of a table (the portfolio table by default) this worker actively owns."""
    changelog = (table or worker.table).changelog_topic.get_topic_name()
    return {tp.partition for tp in worker.app.assignor.assigned_actives() if tp.topic == changelog}


def fund_balance(worker: Worker) -> tuple[str, float] | None:
    """The insurance fund's currency and balance when this worker owns the fund: its live state,
    else (after a rebalance, before the fund's next event) its table entry."""
    owner = worker.fund.owner
    if owner is None:
        if 0 not in owned_partitions(worker, worker.fund_table):
            return None
        settlement = worker.market.params.settlement_currency
        raw = worker.fund_table.get(FUND_KEY.format(currency=settlement))
        if not raw:
            return None
        owner = FundOwner.from_dict(orjson.loads(raw))
    return owner.fund.currency, owner.fund.balance_cents / 100.0


def _processor(worker: Worker, record: PortfolioRecord) -> AccountProcessor:
    """The live processor of the record's partition, or, when the partition has none yet (after a
    rebalance, until its next event), a one-account processor from the table's state. The latter is
    never kept: only the agent builds and keeps a partition's processor."""
    live = worker.partitions.processors.get(record.partition)
    if live is not None and record.account in live.records:
        return live
    state = load_market(worker.table, record.partition)
    market = market_from_dict(state) if state else MarketState()
    proc = AccountProcessor(record.partition, market)
    proc.load({record.account: record})
    return proc


def owned_processor(worker: Worker, account: str) -> AccountProcessor | tuple[int, dict[str, Any]]:
    """The processor holding an account on this worker, else the HTTP status and JSON error.

    Nothing is answered while the worker rebalances: from its new assignment until its tables'
    recovery ends, a partition it just got can still hold stale records."""
    if worker.app.rebalancing:
        return 503, {"error": "rebalancing, try again", "account": account}
    raw = worker.table.get(account) if not account.startswith("\x00") else None
    record = PortfolioRecord.from_json(raw) if raw else None
    if record is None or record.partition not in owned_partitions(worker):
        return 404, {"error": "unknown account", "account": account}
    proc = _processor(worker, record)
    if account not in proc.book or account in proc.unpriced:
        return 503, {"error": "no market data to value the account yet", "account": account}
    return proc


def account_status(worker: Worker, account: str) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of an account's margin, explained (engine/explain.py), from
    this worker's state only."""
    proc = owned_processor(worker, account)
    if not isinstance(proc, AccountProcessor):
        return proc
    record = proc.records[account]
    report = proc.book.margin([account])
    status = status_record(
        report,
        0,
        reason="VIEW",
        topic="view",
        partition=proc.partition,
        offset=0,
        ts=datetime.fromtimestamp(proc.market.as_of, tz=UTC),
        stale=sorted(proc.market.stale),
    )
    standalone = standalone_requirements(proc.book, [record] if record.subs else [], report)
    status = decorate(status, account, None, standalone.get(account), effective_psr(proc.book))
    body = status.model_dump(mode="json", exclude=INPUT_FIELDS)
    body.update(explain(proc.book, account, account).to_dict())
    body["partition"] = proc.partition
    body["served_by"] = str(worker.app.conf.canonical_url)
    return 200, body


def account_request(
    worker: Worker, account: str, action: str, raw: bytes
) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of a what-if or pre-trade request on an account, from this
    worker's state only (streams/accounts/whatif.py: nothing of the account changes)."""
    proc = owned_processor(worker, account)
    if not isinstance(proc, AccountProcessor):
        return proc
    try:
        body = ACTIONS[action](proc, account, raw)
    except RequestError as exc:
        return exc.status, exc.body(account)
    body["served_by"] = str(worker.app.conf.canonical_url)
    return 200, body


def peers(worker: Worker, account: str) -> list[str]:
    """Other workers' URLs, the likely owners of the account's partition first."""
    me = str(worker.app.conf.canonical_url)
    changelog = worker.table.changelog_topic.get_topic_name()
    owners: dict[int, str] = {}
    for url, topics in worker.app.router.table_metadata(worker.table.name).items():
        for partition in topics.get(changelog, ()):
            owners[partition] = url
    likely = [
        owners[p] for p in key_partitions(account, worker.settings.layout_partitions) if p in owners
    ]
    ordered = dict.fromkeys([*likely, *sorted(set(owners.values()))])
    return [url for url in ordered if url != me]


async def _ask(
    worker: Worker, url: str, account: str, action: str = "", body: bytes | None = None
) -> tuple[int, bytes] | None:
    """Ask one worker for an account from its own state (a POST of ``body`` to the account's
    ``action`` when given); None when it cannot be reached."""
    path = "/accounts/" + quote(account, safe="")  # an id is one path segment, never a path
    if action:
        path += "/" + action
    return await ask_local(worker, url, path, body=body if action else None)


async def ask_local(
    worker: Worker,
    url: str,
    path: str,
    timeout_s: float = FORWARD_TIMEOUT_S,
    body: bytes | None = None,
) -> tuple[int, bytes] | None:
    """GET a path (already escaped) of another worker with ``?local=1``, so that it answers from
    its own state only, and the token (a POST of ``body`` when given); its status and body, None
    when it cannot be reached."""
    target = URL(url).with_path(path, encoded=True).with_query(local="1")
    token = worker.settings.web_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    method = "GET" if body is None else "POST"
    try:
        async with worker.app.http_client.request(
            method, target, headers=headers, data=body, timeout=timeout
        ) as resp:
            return resp.status, await resp.read()
    except (TimeoutError, aiohttp.ClientError):
        return None


async def find_account(
    worker: Worker, account: str, local: bool, action: str = "", raw: bytes = b""
) -> tuple[int, bytes]:
    """The account's status (or the answer to its ``action``) from this worker, else from the
    worker that owns it."""
    if action:
        code, body = account_request(worker, account, action, raw)
    else:
        code, body = account_status(worker, account)
    if code != 404 or local:
        return code, orjson.dumps(body)
    unreachable = []
    for url in peers(worker, account):
        answer = await _ask(worker, url, account, action, raw if action else None)
        if answer is None:
            unreachable.append(url)
        elif answer[0] != 404:
            return answer
    if unreachable or worker.app.rebalancing:
        error = {"error": "owner not reachable", "account": account, "unreachable": unreachable}
        return 503, orjson.dumps(error)
    return 404, orjson.dumps(body)


def set_gauges(worker: Worker) -> None:
    """The gauges that describe the worker's state, from that state (on scrape)."""
    metrics = worker.metrics
    metrics.set_accounts(count_states(list(worker.partitions.processors.values())))
    fund = fund_balance(worker)
    metrics.fund_balance.clear()  # only the fund's owner reports it (not a former owner)
    if fund is not None:
        metrics.set_fund_balance(*fund)
    metrics.set_input_ages()
    worker.check_progress()  # the lag as of this scrape, not of the last 5-second check
    for underlying in worker.market.marks:
        metrics.mark_stale.labels(underlying).set(1 if underlying in worker.market.stale else 0)
    metrics.producer_buffer.set(worker.app.producer.buffer.size)
    worker.health.readiness(worker.app)


def install_views(
    app: faust.App,
    worker: Worker,
    more_views: Collection[str] = (),
    more_open: Collection[str] = (),
) -> None:
    """Add ``/health``, ``/ready``, ``/metrics``, ``/accounts/{account}`` and its what-if and
    pre-trade views to the worker's web server, and the access rules (streams/agents/access.py)
    in front of every view: these and ``more_views`` (installed by their own modules, e.g. the
    risk console), of which ``more_open`` need no token."""
    install_access(app, worker.settings, (*VIEWS, *more_views), OPEN_PATHS | set(more_open))

    @app.page("/health", name="spma-health")
    async def health(view: View, request: Request) -> Response:
        """200 while the process and its event loop answer."""
        return view.json({"status": "ok"})

    @app.page("/ready", name="spma-ready")
    async def ready(view: View, request: Request) -> Response:
        """200 when the worker is ready, else 503 with the reasons."""
        code, body = worker.health.readiness(worker.app)
        return view.json(body, status=code)

    @app.page("/metrics", name="spma-metrics")
    async def metrics(view: View, request: Request) -> Response:
        """Prometheus exposition of this worker's registry."""
        set_gauges(worker)
        body, content_type = worker.metrics.render(request.headers.get("Accept", ""))
        return view.bytes(body, headers={"Content-Type": content_type})

    @app.page("/accounts/{account}", name="spma-account")
    async def account_view(view: View, request: Request, account: str) -> Response:
        """An account's current margin status as JSON (404 with a JSON error when unknown)."""
        code, body = await find_account(worker, account, request.query.get("local") == "1")
        return view.bytes(body, content_type="application/json", status=code)

    for action in ACTIONS:
        app.page(f"/accounts/{{account}}/{action}", name=f"spma-{action}")(
            _post_view(worker, action)
        )


async def _bounded_body(http: web.Request) -> bytes:
    """The request's body, read up to one byte past MAX_BODY (enough to refuse it)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        chunk = await http.content.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _post_view(worker: Worker, action: str) -> type[View]:
    """The view answering POST /accounts/{account}/<action> (the access rules refuse any other
    method with a 404: no route of theirs matches it)."""

    class AccountPost(View):
        """What-if or pre-trade on an account, routed to its owner; a JSON error when bad."""

        async def post(self, request: Request, account: str) -> Response:
            """Read the body (bounded), answer from the owner."""
            http = cast(web.Request, request)  # what Faust's aiohttp driver hands a view
            if (http.content_length or 0) > MAX_BODY:
                error = RequestError(413, f"body larger than {MAX_BODY} bytes", "body")
                return self.json(error.body(account), status=413)
            raw = await _bounded_body(http)
            local = request.query.get("local") == "1"
            code, body = await find_account(worker, account, local, action, raw)
            return self.bytes(body, content_type="application/json", status=code)

    return AccountPost
