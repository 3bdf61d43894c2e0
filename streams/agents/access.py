"""Who may use the worker's web port: it is an operator's door, not a public one.

Only the worker's own views are served (any other path, Faust's debug views included, is a 404
before any handler runs), and every view but ``/health``, ``/ready``, ``/metrics`` and the risk
console's page and its assets (they hold no data) asks for ``Authorization: Bearer
<SPMA_WEB_TOKEN>`` when a token is set. A worker that listens beyond
loopback must have one (``check_exposure``): an account's margin is not for anyone on the network.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Collection

import faust
from aiohttp import web

from infra.settings import Settings
from streams.agents.private import aiohttp_app
from streams.errors import StreamError

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
"""Views any caller may use: probes and scrapers carry no token."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ExposedWithoutToken(StreamError, ValueError):
    """The web server would listen beyond loopback with no token to ask for."""


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_exposure(settings: Settings) -> None:
    """ExposedWithoutToken when the worker would listen beyond loopback without a token."""
    if settings.web_token is None and not is_loopback(settings.web_host):
        raise ExposedWithoutToken(
            f"SPMA_WEB_HOST={settings.web_host} listens beyond loopback: set SPMA_WEB_TOKEN "
            "(the bearer token the account views ask for)"
        )


def authorized(request: web.Request, token: str) -> bool:
    """Whether the request carries the bearer token (compared in constant time)."""
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def access_middleware(
    patterns: Collection[str], token: str | None, open_paths: Collection[str] = OPEN_PATHS
) -> Callable[..., object]:
    """An aiohttp middleware serving only routes of ``patterns`` (their canonical form, e.g.
    '/accounts/{account}'), with the token asked for beyond ``open_paths``."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else None
        if pattern not in patterns:
            return web.json_response({"error": "not found"}, status=404)
        if token is not None and pattern not in open_paths and not authorized(request, token):
            body = {"error": "a bearer token is required"}
            headers = {"WWW-Authenticate": "Bearer"}
            return web.json_response(body, status=401, headers=headers)
        return await handler(request)

    return access


def install_access(
    app: faust.App,
    settings: Settings,
    patterns: Collection[str],
    open_paths: Collection[str] = OPEN_PATHS,
) -> None:
    """Put the access rules in front of every view of the app's web server."""
    token = settings.web_token.get_secret_value() if settings.web_token else None
    aiohttp_app(app).middlewares.append(access_middleware(patterns, token, open_paths))
