"""`spma worker`: one stream worker; several share the partitions as a consumer group."""

from __future__ import annotations

import typer

from infra.commands.common import fail, load_settings


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

        from infra.topics import create_topics
        from streams.app import create_app

        settings = load_settings(bootstrap_servers=bootstrap, web_port=web_port)
        if create:
            try:
                create_topics(settings, timeout_s=30)
            except Exception as exc:
                fail(f"cannot create topics on {settings.bootstrap_servers}: {exc}")
        faust_app, _ = create_app(settings)
        faust.Worker(faust_app, loglevel=loglevel, quiet=True).execute_from_commandline()
