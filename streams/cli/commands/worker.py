"""`spma worker`: one stream worker; several share the partitions as a consumer group."""

from __future__ import annotations

import typer

from streams.cli.commands.common import fail, load_settings


def register(app: typer.Typer) -> None:
    """Add `spma worker`."""

    @app.command("worker")
    def worker(
        bootstrap: str | None = typer.Option(None, help="bootstrap servers"),
        web_port: int | None = typer.Option(None, help="metrics and account view port"),
        loglevel: str = typer.Option("warning", help="log level"),
        create: bool = typer.Option(True, help="create missing topics first"),
    ) -> None:
        """Run a margin worker until SIGTERM or Ctrl-C."""
        import faust

        from streams.agents.access import ExposedWithoutToken, check_exposure
        from streams.agents.app import create_app
        from streams.agents.logs import logging_config
        from streams.agents.private import limit_fetch_wait, make_producers_idempotent
        from streams.agents.tuning import tune_gc
        from streams.topics.admin import create_topics

        settings = load_settings(bootstrap_servers=bootstrap, web_port=web_port)
        try:
            check_exposure(settings)
        except ExposedWithoutToken as exc:
            fail(str(exc))
        if create:
            try:
                create_topics(settings, timeout_s=30)
            except Exception as exc:
                fail(f"cannot create topics on {settings.bootstrap_servers}: {exc}")
        limit_fetch_wait(settings.fetch_max_wait_ms)
        if settings.producer_idempotence:
            make_producers_idempotent()
        tune_gc()
        faust_app, _ = create_app(settings)
        logs = logging_config(loglevel, settings.log_format)
        runner = faust.Worker(faust_app, loglevel=loglevel, quiet=True, logging_config=logs)
        # Faust's start-up spinner lowers the root logger to DEBUG (each record turns it), so
        # every debug call of Faust and aiokafka (several per message) built a record for
        # nothing: about 5% of a busy worker. Without it the root logger stays at `loglevel`.
        runner.spinner = None
        runner.execute_from_commandline()
