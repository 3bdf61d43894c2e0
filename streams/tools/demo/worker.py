"""A `spma worker` process for the demo: started against a broker, stopped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.broker import free_port
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[3]  # the checkout: streams/tools/demo/worker.py
COMMIT_INTERVAL_S = 0.2


def start_worker(
    settings: Settings, app_id: str, log_dir: Path, web_port: int | None = None
) -> subprocess.Popen[bytes]:
    """Start one worker process in the app's consumer group (its web server on `web_port`, a
    free one when None); its log goes to log_dir."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        SPMA_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        SPMA_TOPIC_PREFIX=settings.topic_prefix,
        SPMA_PARTITIONS=str(settings.partitions),
        SPMA_APP_ID=app_id,
        SPMA_WEB_PORT=str(web_port or free_port()),
        SPMA_DATA_DIR=str(log_dir / "data"),
        SPMA_PRODUCER_IDEMPOTENCE=str(settings.producer_idempotence).lower(),
        # The demo's steps wait for the worker's commits (a step's market goes out in stages,
        # each once the last is committed): commit often, so that a stage costs a fraction of a
        # second, not the default 2.8 s.
        SPMA_COMMIT_INTERVAL_S=str(COMMIT_INTERVAL_S),
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "worker",
            "--loglevel",
            "warning",
            "--no-create",
        ],
        env=env,
        cwd=ROOT,
        stdout=(log_dir / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop_worker(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
