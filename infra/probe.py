"""A container healthcheck: ``python -m infra.probe /ready`` (or ``/health``) asks this machine's
worker, on the web address its settings give, and exits 0 on a 200, 1 otherwise, with one line
saying what it got (Docker keeps it in ``docker inspect``'s health log).

It reads the same settings as the worker (``SPMA_*`` variables, the TOML file), so a port set
either way is the port probed; a bind-all host is probed on loopback. Only the standard library
talks HTTP: the image has Python, not curl. ``/health`` and ``/ready`` need no token.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from infra.settings import Settings

TIMEOUT_S = 4.0
"""Below the healthchecks' timeout (5 s), so the probe reports before Docker kills it."""
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
PATHS = ("/health", "/ready")


def probe_url(settings: Settings, path: str) -> str:
    """The URL of a worker's view on this machine."""
    host = settings.web_host
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}{path}"


def probe(url: str, timeout_s: float = TIMEOUT_S) -> tuple[bool, str]:
    """Whether the URL answers 200, and a line saying what it answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return (
                resp.status == 200,
                f"{url}: {resp.status} {resp.read(500).decode(errors='replace')}",
            )
    except urllib.error.HTTPError as exc:  # 503 from /ready: its body names the reasons
        return False, f"{url}: {exc.code} {exc.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: no answer ({exc})"


def main(argv: list[str]) -> int:
    """Probe the path given (``/health`` by default); 0 when it answers 200."""
    path = argv[0] if argv else "/health"
    if path not in PATHS:
        print(f"usage: python -m infra.probe [{'|'.join(PATHS)}]", file=sys.stderr)
        return 2
    ok, line = probe(probe_url(Settings(), path))
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
