"""`spma worker`: one stream worker; several share the partitions as a consumer group.

Before Faust starts, what would otherwise fail inside it with a traceback is checked and told in
one line (exit 2): the log level, a web host beyond loopback without a token, the web port on
the configured host, the tables' changelogs of a deployment from before they were put under the
topic prefix; and the parameter file of the settings (SPMA_PARAMS_FILE), when set, is published
if its version is newer than the live one.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from infra.settings import Settings
from streams.cli.commands.common import fail, load_settings
from streams.cli.commands.params import publish_if_newer, read_params

if TYPE_CHECKING:
    from streams.scaling.control import Layouts

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
"""The log levels --loglevel takes (Faust's names, any case)."""


def check_loglevel(level: str) -> str:
    """The level, lower-cased, or exit 2 naming the ones accepted."""
    if level.lower() not in LOG_LEVELS:
        fail(f"--loglevel {level!r}: want one of {', '.join(LOG_LEVELS)}")
    return level.lower()


def check_port(host: str, port: int) -> None:
    """Exit 2 when the web port cannot be bound on the host (in use, or a host that is not
    this machine's), by binding it briefly as the web server will."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.create_server((host, port), family=infos[0][0]):
            pass
    except OSError as exc:
        fail(
            f"web port {host}:{port}: {exc.strerror or exc} (set SPMA_WEB_PORT or --web-port, "
            "or SPMA_WEB_HOST)"
        )


def check_changelogs(settings: Settings) -> None:
    """Exit 2 when the broker has the tables' changelogs under Faust's old names (outside the
    prefix) but not under the new: the worker would start with empty tables."""
    from streams.topics.admin import existing_topics

    if settings.legacy_changelog_names:
        return
    old = settings.model_copy(update={"legacy_changelog_names": True})
    try:
        topics = existing_topics(settings)
    except Exception as exc:  # broker unreachable
        fail(f"cannot list topics on {settings.bootstrap_servers}: {exc}")
    if old.changelog_topic("portfolios") in topics and (
        settings.changelog_topic("portfolios") not in topics
    ):
        fail(
            f"the tables' changelogs are named {old.changelog_topic('<table>')} on the broker, "
            f"now {settings.changelog_topic('<table>')}: copy them with `spma topics "
            "migrate-changelogs` (every worker stopped), or set SPMA_LEGACY_CHANGELOG_NAMES=true "
            "to keep the old names"
        )


def publish_params_file(settings: Settings, path: Path) -> None:
    """Publish the settings' parameter file when its version is newer than the live one (exit
    2 when the file is not a valid set); say which happened."""
    params = read_params(path)
    reason = publish_if_newer(settings, params)
    if reason is None:
        typer.echo(f"spma: published {params.name}@{params.version} from {path}", err=True)
    else:
        typer.echo(f"spma: params file {path} not published: {reason}", err=True)


def register(app: typer.Typer) -> None:
    """Add `spma worker`."""

    @app.command("worker")
    def worker(
        bootstrap: str | None = typer.Option(None, help="bootstrap servers"),
        web_port: int | None = typer.Option(None, help="metrics and account view port"),
        loglevel: str = typer.Option("warning", help=f"log level: {', '.join(LOG_LEVELS)}"),
        create: bool = typer.Option(True, help="create missing topics first"),
    ) -> None:
        """Run a margin worker until SIGTERM or Ctrl-C."""
        level = check_loglevel(loglevel)
        settings = load_settings(bootstrap_servers=bootstrap, web_port=web_port)
        check_web(settings)
        prepare(settings, create)
        run(settings, level)


def check_web(settings: Settings) -> None:
    """Exit 2 when the web server would listen beyond loopback without a token, or cannot bind
    its port."""
    from streams.agents.access import ExposedWithoutToken, check_exposure

    try:
        check_exposure(settings)
    except ExposedWithoutToken as exc:
        fail(str(exc))
    check_port(settings.web_host, settings.web_port)


def prepare(settings: Settings, create: bool) -> None:
    """What comes before Faust: the topics, the changelogs' names, the parameter file."""
    from streams.topics.admin import create_topics

    if create:
        try:
            create_topics(settings, timeout_s=30)
        except Exception as exc:
            fail(f"cannot create topics on {settings.bootstrap_servers}: {exc}")
    check_changelogs(settings)
    if settings.params_file is not None:
        publish_params_file(settings, settings.params_file)


def run(settings: Settings, level: str) -> None:
    """Start Faust's worker with the app and its logging in the deployment's active generation
    and run it until it stops; when it stopped to switch generation (streams/scaling/), start
    this same command again in place (exec: same process id, same arguments)."""
    import faust

    from streams.agents.app import create_app
    from streams.agents.logs import logging_config
    from streams.agents.private import limit_fetch_wait, make_producers_idempotent
    from streams.agents.tuning import tune_gc
    from streams.scaling.control import Watch

    limit_fetch_wait(settings.fetch_max_wait_ms)
    if settings.producer_idempotence:
        make_producers_idempotent()
    tune_gc()
    layouts = wait_runnable(settings)
    settings = settings.for_generation(layouts.active, layouts.active_partitions)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes its last level only
    faust_app, worker = create_app(settings, Watch(settings, layouts))
    logs = logging_config(level, settings.log_format)
    runner = faust.Worker(faust_app, loglevel=level, quiet=True, logging_config=logs)
    # Faust's start-up spinner lowers the root logger to DEBUG (each record turns it), so
    # every debug call of Faust and aiokafka (several per message) built a record for
    # nothing: about 5% of a busy worker. Without it the root logger stays at `loglevel`.
    runner.spinner = None
    try:
        runner.execute_from_commandline()
    finally:
        if worker.switch is not None and worker.switch.switching:
            restart()


def wait_runnable(settings: Settings) -> Layouts:
    """The deployment's layouts once its active generation may run (a scale's drain or copy
    under way: wait for its switch or its roll-back, saying so once)."""
    from streams.scaling.control import ensure_topic, read_layouts

    try:
        ensure_topic(settings)
        layouts = read_layouts(settings)
    except Exception as exc:  # broker unreachable
        fail(f"cannot read {settings.generations_topic()}: {exc}")
    if not layouts.runnable:
        typer.echo(f"spma: a scale is switching generation {layouts.active}: waiting", err=True)
    while not layouts.runnable:
        time.sleep(0.5)
        layouts = read_layouts(settings)
    return layouts


def restart() -> None:
    """Run this very command line again in this process (the next generation's worker)."""
    typer.echo("spma: restarting the worker in the next generation", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
